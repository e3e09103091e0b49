import http from 'node:http';

/** A request on a new connection each time, so a cluster's round-robin spreads them over its workers. */
export function requestOnNewConnection(port: number, path: string, init: { method?: string; headers?: http.OutgoingHttpHeaders; localAddress?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, timeout: 20_000, ...init }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${init.method ?? 'GET'} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export function getOnNewConnection(port: number, path: string): Promise<{ status: number; body: string }> {
  return requestOnNewConnection(port, path);
}
