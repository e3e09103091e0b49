import http from 'node:http';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';

/** Requests kept in flight through one gateway, `concurrency` at a time, each answered after the upstream's delay. */
export class ClosedLoad {
  ok = 0;
  failed = 0;
  readonly errors: string[] = [];
  #concurrency = 0;
  #running = 0;
  #stopped = false;
  readonly #agent = new http.Agent({ keepAlive: true });

  constructor(private readonly port: number) {}

  /** More loops start at once; fewer: loops end after their request in flight. */
  set(concurrency: number): void {
    this.#concurrency = concurrency;
    while (this.#running < this.#concurrency && !this.#stopped) void this.#loop();
  }

  async #loop(): Promise<void> {
    this.#running++;
    while (!this.#stopped && this.#running <= this.#concurrency) {
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: this.port, path: '/', agent: this.#agent, timeout: 10_000 }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', reject);
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', reject);
        });
        if (status === 200) this.ok++; else { this.failed++; this.errors.push(`status ${status}`); }
      } catch (err) {
        if (this.#stopped) break;
        this.failed++;
        this.errors.push((err as Error).message);
      }
    }
    this.#running--;
  }

  stop(): void {
    this.#stopped = true;
    this.#agent.destroy();
  }
}

/** An upstream on 127.0.0.1 that answers 200 after `delayMs`: the requests in flight are the load's concurrency. */
export async function slowUpstream(delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    const timer = setTimeout(() => { res.writeHead(200, { 'content-length': '2' }); res.end('ok'); }, delayMs);
    res.on('close', () => clearTimeout(timer));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); },
  };
}

/** The exec scaler's calls as recorded by the test's scale command: one `INSTANCE REPLICAS` line each. */
export async function scaleCalls(file: string): Promise<{ instance: string; replicas: number }[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => {
    const [instance, replicas] = l.split(' ');
    return { instance: instance as string, replicas: Number(replicas) };
  });
}

/** GET /admin/fleet of a gateway. */
export async function fleetOf(adminPort: number): Promise<{ self: string; leader: string | null; leaseRemainingMs: number | null; gateways: { instance: string; configDiffers: boolean }[] }> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/admin/fleet`, { signal: AbortSignal.timeout(3000) });
  return (await r.json()) as never;
}
