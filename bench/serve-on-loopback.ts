import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The protocol between the runner and the servers it starts from bench/ (the upstream, the Node anchors): listen on
 * 127.0.0.1 port 0, print one JSON line {"port":N} on stdout, and exit on SIGTERM or SIGINT after closing the
 * connections (within 1 s).
 */
export function serveOnLoopback(server: Server): void {
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
}
