/**
 * The benchmark's upstream, run as its own process: the smallest useful Node HTTP server. Every request gets 200 and
 * the same BODY_BYTES-byte body, with Content-Length, over keep-alive (Node's default). It prints one JSON line
 * {"port":N} on stdout once listening, and exits on SIGTERM or SIGINT.
 *
 *   node dist/bench/upstream-server.js [BODY_BYTES=100]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const bodyBytes = Number(process.argv[2] ?? 100);
if (!Number.isInteger(bodyBytes) || bodyBytes < 0) throw new Error(`body size must be a non-negative integer, got ${process.argv[2]}`);
const body = Buffer.alloc(bodyBytes, 'x');
const headers = { 'content-type': 'text/plain', 'content-length': String(bodyBytes) };

const server = http.createServer((req, res) => {
  // A GET has no body, but a request that sends one must be read for the connection to stay reusable.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
