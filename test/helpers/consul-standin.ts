import http from 'node:http';
import https from 'node:https';
import { listenOnLoopback } from './listen-loopback.js';
import type { ConsulHealthEntry } from '../../plugins/discovery/consul.js';

export interface ConsulStandIn {
  readonly url: string;
  /** Every request's path and query, in order. */
  readonly requests: { url: string; token: string | undefined; at: number }[];
  /** Replaces a service's instances and bumps the index, answering blocked queries (as a Raft commit would). */
  setInstances(service: string, entries: ConsulHealthEntry[]): void;
  /** Answers every request with this status until called with null. */
  failWith(status: number | null): void;
  /** Sets the index as a restored snapshot would (it may go backwards). */
  setIndex(index: number): void;
  close(): Promise<void>;
}

function parseWait(text: string | null): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(text ?? '');
  if (!m) return 5 * 60_000;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

/**
 * A stand-in for Consul's /v1/health/service/<name> (Consul itself cannot be installed here). It speaks the real
 * protocol: X-Consul-Index on every answer; a query with index=N blocks while the index is still N, up to `wait`;
 * `passing` filters out instances with a non-passing check; every `tag` must be present; `dc` other than dc1 is an
 * error; a wrong X-Consul-Token is 403 "ACL not found", as Consul answers. With `tls` it serves HTTPS and, like
 * Consul with `verify_incoming`, accepts only clients with a certificate signed by `tls.ca`.
 */
export async function startConsulStandIn(token: string, tls?: { cert: Buffer; key: Buffer; ca: Buffer }): Promise<ConsulStandIn> {
  const services = new Map<string, ConsulHealthEntry[]>();
  const requests: ConsulStandIn['requests'] = [];
  let index = 10;
  let failing: number | null = null;
  const waiters = new Set<() => void>();
  const wake = () => { for (const w of [...waiters]) w(); };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://consul');
    const sent = req.headers['x-consul-token'];
    requests.push({ url: req.url ?? '', token: typeof sent === 'string' ? sent : undefined, at: Date.now() });
    if (failing !== null) { res.writeHead(failing); res.end('rpc error: No cluster leader'); return; }
    if (sent !== token) { res.writeHead(403); res.end('ACL not found'); return; }
    const m = /^\/v1\/health\/service\/([^/]+)$/.exec(u.pathname);
    if (!m) { res.writeHead(404); res.end(); return; }
    const dc = u.searchParams.get('dc');
    if (dc && dc !== 'dc1') { res.writeHead(500); res.end(`No path to datacenter`); return; }
    const asked = Number(u.searchParams.get('index') ?? 0);
    if (asked > 0 && asked >= index) {
      const waitMs = parseWait(u.searchParams.get('wait'));
      await new Promise<void>((resolve) => {
        const done = () => { clearTimeout(timer); waiters.delete(done); resolve(); };
        const timer = setTimeout(done, waitMs);
        waiters.add(done);
        res.once('close', done);
      });
      if (res.destroyed) return;
    }
    const tags = u.searchParams.getAll('tag');
    const passing = u.searchParams.has('passing');
    const body = (services.get(decodeURIComponent(m[1] as string)) ?? []).filter((e) =>
      tags.every((t) => (e.Service.Tags ?? []).includes(t)) && (!passing || (e.Checks ?? []).every((c) => c.Status === 'passing')));
    res.writeHead(failing ?? 200, { 'content-type': 'application/json', 'x-consul-index': String(index), 'x-consul-knownleader': 'true' });
    res.end(JSON.stringify(body));
  };
  const server = tls ? https.createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, handle) : http.createServer(handle);
  const bound = await listenOnLoopback(server);
  return {
    url: bound.url,
    requests,
    setInstances: (service, entries) => { services.set(service, entries); index++; wake(); },
    failWith: (status) => { failing = status; wake(); },
    setIndex: (n) => { index = n; wake(); },
    close: () => { wake(); return bound.close(); },
  };
}
