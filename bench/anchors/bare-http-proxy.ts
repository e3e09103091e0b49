/**
 * Anchor: a bare reverse proxy, the ~15 lines anyone would write with http-proxy and a keep-alive agent. No routing,
 * no logging, no resilience. Gantry forwarded with http-proxy until the numbers beside bare-undici moved it to undici.
 *
 *   node dist/bench/anchors/bare-http-proxy.js http://127.0.0.1:UPSTREAM_PORT
 */
import http from 'node:http';
import httpProxy from 'http-proxy';
import { serveOnLoopback } from '../serve-on-loopback.js';

const proxy = httpProxy.createProxyServer({ target: process.argv[2], agent: new http.Agent({ keepAlive: true }) });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
serveOnLoopback(http.createServer((req, res) => proxy.web(req, res)));
