import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * The demo upstream: answers every request with JSON describing it (method, path, headers, body size, which
 * instance answered). Query knobs for trying the gateway: ?delay=ms, ?status=code, ?size=bytes.
 */
export function createEchoServer(name: string): http.Server {
  return http.createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => { bodyBytes += c.length; });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://upstream');
      const delayMs = Math.min(Number(url.searchParams.get('delay') ?? 0) || 0, 60_000);
      const status = Number(url.searchParams.get('status') ?? 200) || 200;
      const size = Math.min(Number(url.searchParams.get('size') ?? 0) || 0, 64 * 1024 * 1024);
      setTimeout(() => {
        const body = size > 0
          ? Buffer.alloc(size, 'x')
          : JSON.stringify({ instance: name, method: req.method, path: req.url, headers: req.headers, bodyBytes }, null, 2) + '\n';
        res.writeHead(status, { 'content-type': size > 0 ? 'application/octet-stream' : 'application/json', 'x-instance': name });
        res.end(body);
      }, delayMs);
    });
  });
}

export async function startEchoServer(port: number, name = `echo:${port}`, host = '127.0.0.1'): Promise<http.Server> {
  const server = createEchoServer(name);
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 3001);
  const server = await startEchoServer(port);
  process.stdout.write(`echo server on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}
