import type { SecureContext } from 'node:tls';
import { Pool } from 'undici';
import { PeakEwma } from '../balancing/peak-ewma.js';
import type { BreakerConfig, UpstreamProtocol, UpstreamTlsConfig } from '../config/gateway-config.js';
import { jsonEqual } from '../config/json-equal.js';
import { EndpointHealth } from '../resilience/endpoint-health.js';
import { upstreamSecureContext } from '../tls/upstream-secure-context.js';

/** Per-service settings every endpoint of the service shares. */
export interface EndpointSettings {
  readonly maxSockets: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly breaker: BreakerConfig;
  readonly protocol: UpstreamProtocol;
  readonly tls: UpstreamTlsConfig | null;
}

/** What a TLS connection to an https:// endpoint is made with, beside host and port (pools, health checks, tunnels). */
export interface EndpointTls {
  readonly secureContext?: SecureContext;
  readonly servername?: string;
}

const NO_TLS: EndpointTls = Object.freeze({});

function tlsOf(https: boolean, settings: EndpointSettings): EndpointTls {
  const tls = settings.tls;
  if (!https || tls === null) return NO_TLS;
  return { secureContext: upstreamSecureContext(tls), servername: tls.serverName };
}

/**
 * The endpoint's keep-alive connections: an undici Pool, whose dispatch costs two thirds of the instructions per
 * request of http.request over an http.Agent, and about half of http-proxy's web() (bench/RESULTS.md, "upstream
 * clients"). The idle timeout stays below the upstream's keep-alive timeout (undici also honours a shorter
 * `Keep-Alive: timeout` hint from the upstream), so the gateway closes an idle socket before the upstream does: the
 * keep-alive reset race. No header or body timeouts of undici's own: the route deadline and the per-try timeout
 * cover a request (docs/resilience.md).
 */
function createPool(origin: string, settings: EndpointSettings, tls: EndpointTls): Pool {
  const h2 = settings.protocol === 'h2';
  // `useH2c` at the top: the Pool builds its connector from it (undici's types list it only under h2Options, which a
  // Pool's connector does not read).
  const options: Pool.Options & { useH2c: boolean } = {
    connections: settings.maxSockets,
    keepAliveTimeout: settings.idleTimeoutMs,
    keepAliveMaxTimeout: settings.idleTimeoutMs,
    headersTimeout: 0,
    bodyTimeout: 0,
    // undici offers h2 in ALPN unless told otherwise: http1 is HTTP/1.1 only. h2 asks for it first (an upstream
    // that only speaks HTTP/1.1 is still reached), and an http:// endpoint gets h2c with prior knowledge.
    allowH2: h2,
    useH2c: h2 && origin.startsWith('http:'),
    connect: { timeout: settings.connectTimeoutMs, preferH2: h2, ...tls },
  };
  return new Pool(origin, options);
}

function sameSockets(a: EndpointSettings, b: EndpointSettings): boolean {
  return a.maxSockets === b.maxSockets && a.idleTimeoutMs === b.idleTimeoutMs && a.connectTimeoutMs === b.connectTimeoutMs
    && a.protocol === b.protocol && jsonEqual(a.tls, b.tls);
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
  /** The TLS context and name of an https:// endpoint's connections (empty for http://, or without `tls:`). */
  tls: EndpointTls;
  /** The service's `tls.serverName`, sent with each request: undici would otherwise take the name from its Host. */
  servername: string | undefined;
  /** Spoken over HTTP/2 (`protocol: h2`): the upstream's trailers are relayed (gRPC's status travels in them). */
  http2: boolean;
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
    this.tls = tlsOf(u.protocol === 'https:', settings);
    this.servername = this.tls.servername;
    this.http2 = settings.protocol === 'h2';
    this.pool = createPool(this.#origin, settings, this.tls);
    this.addedAt = now;
    this.latency = new PeakEwma(10_000, 0, now);
    this.health.configure(settings.breaker);
  }

  configure(settings: EndpointSettings): void {
    this.health.configure(settings.breaker);
    if (sameSockets(this.#settings, settings)) return;
    this.#settings = settings;
    this.tls = tlsOf(this.target.protocol === 'https:', settings);
    this.servername = this.tls.servername;
    this.http2 = settings.protocol === 'h2';
    const old = this.pool;
    this.pool = createPool(this.#origin, settings, this.tls);
    // Requests on the old pool finish there; it closes its sockets once they are done.
    old.close().catch(() => {});
  }

  /** Closes every connection at once (the endpoint is gone, or the gateway stops). */
  destroy(): void {
    this.pool.destroy().catch(() => {});
  }
}
