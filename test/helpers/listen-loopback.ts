import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo, Server, Socket } from 'node:net';

/**
 * Binds a test server (HTTP or HTTPS) to 127.0.0.1 on a free port and tracks its sockets, so `close()` ends long-polls and
 * keep-alives at once instead of waiting for them.
 */
export async function listenOnLoopback(server: Server): Promise<{ url: string; port: number; destroySockets(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${server instanceof https.Server ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    destroySockets: () => { for (const s of sockets) s.destroy(); },
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
