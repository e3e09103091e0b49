/**
 * The anchor for `npm run bench:idle -- --bare`: a plain Node HTTP server with nothing of Gantry's, so the memory a
 * connection costs in Node itself can be told from what Gantry adds. Every request gets 200 and a 100-byte body over
 * keep-alive; `GET /__memory` answers process.memoryUsage() as JSON. It prints {"port":N} once listening.
 *
 *   node dist/bench/bare-http-server.js KEEP_ALIVE_TIMEOUT_MS
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const keepAliveTimeout = Number(process.argv[2] ?? 3_600_000);
const body = Buffer.alloc(100, 'x');
const server = http.createServer({ keepAliveTimeout }, (req, res) => {
  req.resume();
  if (req.url === '/__memory') { res.end(JSON.stringify(process.memoryUsage())); return; }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
