import { Pool } from 'undici';
import { PeakEwma } from '../balancing/peak-ewma.js';
import type { BreakerConfig } from '../config/gateway-config.js';
import { EndpointHealth } from '../resilience/endpoint-health.js';

/** Per-service settings every endpoint of the service shares. */
export interface EndpointSettings {
  readonly maxSockets: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly breaker: BreakerConfig;
}

/**
 * The endpoint's keep-alive connections: an undici Pool, whose dispatch costs two thirds of the instructions per
 * request of http.request over an http.Agent, and about half of http-proxy's web() (bench/RESULTS.md, "upstream
 * clients"). The idle timeout stays below the upstream's keep-alive timeout (undici also honours a shorter
 * `Keep-Alive: timeout` hint from the upstream), so the gateway closes an idle socket before the upstream does: the
 * keep-alive reset race. No header or body timeouts of undici's own: the route deadline and the per-try timeout
 * cover a request (docs/resilience.md).
 */
function createPool(origin: string, settings: EndpointSettings): Pool {
  return new Pool(origin, {
    connections: settings.maxSockets,
    keepAliveTimeout: settings.idleTimeoutMs,
    keepAliveMaxTimeout: settings.idleTimeoutMs,
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { timeout: settings.connectTimeoutMs },
  });
}

function sameSockets(a: EndpointSettings, b: EndpointSettings): boolean {
  return a.maxSockets === b.maxSockets && a.idleTimeoutMs === b.idleTimeoutMs && a.connectTimeoutMs === b.connectTimeoutMs;
}

/**
 * Everything the gateway knows about one endpoint of one service. It lives in the EndpointRegistry, keyed by
 * service + address, so a reload or a discovery update that keeps the endpoint keeps its sockets and counters.
 */
export class EndpointState {
  readonly key: string;
  readonly service: string;
  readonly address: string;
  /** Pre-parsed for WebSocket tunnels and health checks, so nothing parses a URL per request. */
  readonly target: { readonly protocol: string; readonly host: string; readonly port: number };
  /** `host:port`, the Host header when a service sends the endpoint's own. */
  readonly hostHeader: string;
  /** Keep-alive connections for forwarded requests; replaced (the old one drains) when the socket settings change. */
  pool: Pool;
  #settings: EndpointSettings;
  readonly #origin: string;
  weight: number;
  /** Requests sent and not yet finished. */
  inFlight = 0;
  /** Pools that list this endpoint; at 0 (and no request in flight) the registry closes its sockets. */
  refs = 0;
  /** When discovery first listed it (slow start). */
  readonly addedAt: number;
  readonly latency: PeakEwma;
  readonly health = new EndpointHealth();

  constructor(service: string, address: string, weight: number, settings: EndpointSettings, now = Date.now()) {
    const u = new URL(address);
    this.key = `${service}|${address}`;
    this.service = service;
    this.address = address;
    this.weight = weight;
    const port = Number(u.port);
    // URL keeps IPv6 brackets in hostname; the socket layer wants them off.
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    this.target = { protocol: u.protocol, host, port };
    this.hostHeader = u.host;
    this.#origin = u.origin;
    this.#settings = settings;
    this.pool = createPool(this.#origin, settings);
    this.addedAt = now;
    this.latency = new PeakEwma(10_000, 0, now);
    this.health.configure(settings.breaker);
  }

  configure(settings: EndpointSettings): void {
    this.health.configure(settings.breaker);
    if (sameSockets(this.#settings, settings)) return;
    this.#settings = settings;
    const old = this.pool;
    this.pool = createPool(this.#origin, settings);
    // Requests on the old pool finish there; it closes its sockets once they are done.
    old.close().catch(() => {});
  }

  /** Closes every connection at once (the endpoint is gone, or the gateway stops). */
  destroy(): void {
    this.pool.destroy().catch(() => {});
  }
}
