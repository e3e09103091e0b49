/**
 * Anchor: the same bare reverse proxy on undici's Pool.dispatch, the client Gantry forwards with. Set beside
 * bare-http-proxy, it shows what the upstream client alone costs (bench/RESULTS.md, "upstream clients"). It drops
 * the request's hop-by-hop headers (undici refuses them) and the response's framing (Node frames it again), and
 * relays the body with backpressure; nothing else.
 *
 *   node dist/bench/anchors/bare-undici.js http://127.0.0.1:UPSTREAM_PORT
 */
import http from 'node:http';
import { Pool } from 'undici';
import { serveOnLoopback } from '../serve-on-loopback.js';

const pool = new Pool(process.argv[2] as string, { connections: 256 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer']);

serveOnLoopback(http.createServer((req, res) => {
  const headers: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!HOP.has((req.rawHeaders[i] as string).toLowerCase())) headers.push(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  }
  const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
  pool.dispatch({ method: req.method as 'GET', path: req.url as string, headers, body: bodyless ? null : req }, {
    onRequestStart() {},
    onResponseStart(controller, status) {
      const raw = controller.rawHeaders as Buffer[];
      const out: string[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        const name = (raw[i] as Buffer).toString('latin1');
        if (!HOP.has(name.toLowerCase())) out.push(name, (raw[i + 1] as Buffer).toString('latin1'));
      }
      res.writeHead(status, out);
    },
    onResponseData(controller, chunk) {
      if (res.write(chunk)) return;
      controller.pause();
      res.once('drain', () => controller.resume());
    },
    onResponseEnd() { res.end(); },
    onResponseError() {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  });
}));
