import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface CountingUpstream {
  readonly host: string;
  readonly port: number;
  /** The canonical endpoint address, e.g. http://127.0.0.2:4000 or http://[::1]:4000. */
  readonly address: string;
  readonly hits: () => number;
  /** When the first request arrived after `since` (ms epoch), or null. */
  firstHitAfter(since: number): number | null;
  lastHit(): number | null;
  close(): Promise<void>;
}

/** An HTTP server on any loopback host and port that answers 200 with its address and remembers when it was hit. */
export async function startCountingUpstream(host = '127.0.0.1', port = 0): Promise<CountingUpstream> {
  const times: number[] = [];
  const sockets = new Set<Socket>();
  let address = '';
  const server = http.createServer((req, res) => {
    times.push(Date.now());
    req.resume();
    req.on('end', () => res.end(address));
  });
  server.keepAliveTimeout = 10_000;
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.listen(port, host);
  await once(server, 'listening');
  const bound = (server.address() as AddressInfo).port;
  address = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    host, port: bound, address,
    hits: () => times.length,
    firstHitAfter: (since) => times.find((t) => t >= since) ?? null,
    lastHit: () => times.at(-1) ?? null,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
