/**
 * The benchmark's upstream, run as its own process: the smallest useful Node HTTP server. Every request gets 200 and
 * the same BODY_BYTES-byte body, with Content-Length, over keep-alive (Node's default). A request with a body (the
 * POST scenario) is read to the end first, and the answer says how much arrived in `x-received-bytes`, so the runner
 * can check that a proxy really passed the body on. It prints one JSON line {"port":N} on stdout once listening,
 * and exits on SIGTERM or SIGINT.
 *
 *   node dist/bench/upstream-server.js [BODY_BYTES=100]
 */
import http from 'node:http';
import { serveOnLoopback } from './serve-on-loopback.js';

const bodyBytes = Number(process.argv[2] ?? 100);
if (!Number.isInteger(bodyBytes) || bodyBytes < 0) throw new Error(`body size must be a non-negative integer, got ${process.argv[2]}`);
const body = Buffer.alloc(bodyBytes, 'x');
const headers = { 'content-type': 'text/plain', 'content-length': String(bodyBytes) };

const server = http.createServer((req, res) => {
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
    // No body (every GET here): answer at once, as before the POST scenario existed, so the GET numbers stay comparable.
    req.resume();
    res.writeHead(200, headers);
    res.end(body);
    return;
  }
  let received = 0;
  req.on('data', (chunk: Buffer) => { received += chunk.length; });
  req.on('end', () => {
    res.writeHead(200, { ...headers, 'x-received-bytes': String(received) });
    res.end(body);
  });
});
// Longer than any proxy here keeps an idle upstream connection (nginx: keepalive_timeout 30s in its config; Node
// agents follow the Keep-Alive: timeout=65 header this sends, minus 1 s). Otherwise an upstream closing an idle
// connection just as a proxy reuses it would cost that proxy an error now and then (Node's default is 5 s).
server.keepAliveTimeout = 65_000;
serveOnLoopback(server);
