import type { IncomingMessage } from 'node:http';
import type { Balancer, PickContext } from '../balancing/balancer.js';
import type { ServiceConfig } from '../config/gateway-config.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';

/** One request's view while choosing: what it already tried, and whether the service is in panic mode. */
export class Selection implements PickContext {
  now = 0;
  panic = false;
  /** Endpoints this request already tried; each retry prefers a different one. */
  readonly tried: EndpointState[] = [];
  allowTried = false;
  hashKey: string | undefined = undefined;

  usable(e: EndpointState): boolean {
    if (!this.allowTried && this.tried.length !== 0 && this.tried.includes(e)) return false;
    return e.health.usable(this.now, this.panic);
  }
}

function compileHashKey(hashOn: string | undefined): ((req: IncomingMessage) => string | undefined) | null {
  if (hashOn === undefined) return null;
  if (hashOn === 'client-ip') return (req) => req.socket.remoteAddress;
  const [kind, name] = hashOn.split(':') as [string, string];
  if (kind === 'header') {
    const header = name.toLowerCase();
    return (req) => {
      const v = req.headers[header];
      return Array.isArray(v) ? v[0] : v;
    };
  }
  const cookie = new RegExp(`(?:^|;\\s*)${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=([^;]*)`);
  return (req) => {
    const header = req.headers.cookie;
    return header === undefined ? undefined : cookie.exec(header)?.[1];
  };
}

/**
 * Chooses the endpoint for one attempt: the balancer's pick among usable endpoints. When fewer than
 * (100 - maxEjectionPercent) % of the endpoints are available, ejection and failed health checks are ignored
 * (Envoy's panic mode): better to spread load over all than to crush the few left. Open circuits are never ignored.
 */
export class EndpointSelector {
  readonly #hashKey: ((req: IncomingMessage) => string | undefined) | null;
  readonly #minAvailableShare: number;

  constructor(private readonly pool: UpstreamPool, private readonly balancer: Balancer, cfg: ServiceConfig) {
    this.#hashKey = compileHashKey(cfg.hashOn);
    this.#minAvailableShare = 1 - cfg.outlierDetection.maxEjectionPercent / 100;
  }

  select(sel: Selection, req: IncomingMessage, now: number): EndpointState | undefined {
    const endpoints = this.pool.endpoints;
    if (endpoints.length === 0) return undefined;
    sel.now = now;
    let available = 0;
    for (const e of endpoints) if (e.health.available(now)) available++;
    sel.panic = available < endpoints.length * this.#minAvailableShare;
    if (this.#hashKey !== null && sel.tried.length === 0) sel.hashKey = this.#hashKey(req);
    let picked = this.balancer.pick(endpoints, sel);
    if (picked === undefined && sel.tried.length !== 0) {
      // Every other endpoint is out: a retry may go back to one already tried rather than fail.
      sel.allowTried = true;
      picked = this.balancer.pick(endpoints, sel);
      sel.allowTried = false;
    }
    if (picked !== undefined) {
      picked.health.picked(now);
      sel.tried.push(picked);
    }
    return picked;
  }

  /** May one more endpoint be ejected without passing maxEjectionPercent? */
  mayEject(now: number, maxEjectionPercent: number): boolean {
    const endpoints = this.pool.endpoints;
    let out = 0;
    for (const e of endpoints) if (now < e.health.ejectedUntil || !e.health.activeHealthy) out++;
    return out + 1 <= Math.floor(endpoints.length * maxEjectionPercent / 100);
  }

  /** Endpoints whose open circuit lets no try through yet. */
  openCircuits(now: number): number {
    let open = 0;
    for (const e of this.pool.endpoints) if (e.health.breaker !== null && e.health.probeAt > now) open++;
    return open;
  }

  /** Seconds until the first open circuit lets a probe through, for Retry-After when nothing is usable. */
  retryAfterS(now: number): number {
    let soonest = Infinity;
    for (const e of this.pool.endpoints) {
      if (e.health.breaker !== null && e.health.probeAt > now) soonest = Math.min(soonest, e.health.probeAt);
      if (e.health.ejectedUntil > now) soonest = Math.min(soonest, e.health.ejectedUntil);
    }
    return soonest === Infinity ? 1 : Math.max(1, Math.ceil((soonest - now) / 1000));
  }
}
