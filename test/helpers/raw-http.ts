import net from 'node:net';

export interface RawResult {
  /** Everything the server sent before it closed (or before the wait ended). */
  readonly text: string;
  readonly status: number | null;
  readonly closed: boolean;
  readonly ms: number;
}

/**
 * Sends raw bytes to 127.0.0.1:port and collects the answer until the server closes the connection or `waitMs`
 * passes. For inputs no HTTP client would produce.
 */
export function rawRequest(port: number, data: string | Buffer | (string | Buffer)[], waitMs = 2000, gapMs = 0): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : null, closed, ms: Date.now() - started });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => { closed = true; finish(); });
    socket.on('connect', async () => {
      const parts = Array.isArray(data) ? data : [data];
      for (const p of parts) {
        if (socket.destroyed) return;
        socket.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}
