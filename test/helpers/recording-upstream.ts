import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

export type UpstreamBehaviour = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

export interface RecordingUpstream {
  readonly server: http.Server;
  readonly port: number;
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Sockets currently open to this upstream. */
  openSockets(): number;
  behave(fn: UpstreamBehaviour): void;
  close(): Promise<void>;
}

const echo: UpstreamBehaviour = (req, res, body) => {
  res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: body.length }));
};

/** A real HTTP server on 127.0.0.1 that records every request it receives (to see smuggled or replayed ones). */
export async function startRecordingUpstream(behaviour: UpstreamBehaviour = echo): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  let current = behaviour;
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      current(req, res, body);
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server, port, url: `http://127.0.0.1:${port}`, requests,
    openSockets: () => sockets.size,
    behave: (fn) => { current = fn; },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
