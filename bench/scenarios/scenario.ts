import type { RequestShape } from '../load-generator.js';

/** One benchmark setup: what the upstream answers, what the clients send, and how Gantry is configured in front. */
export interface Scenario {
  /** `--scenario NAME` picks it. */
  readonly name: string;
  /** One line for the output and RESULTS.md. */
  readonly summary: string;
  /** Concurrent keep-alive connections the load generator holds open. */
  readonly connections: number;
  /** Size of every response body the upstream sends. */
  readonly upstreamBodyBytes: number;
  /** Path requested, both directly and through every proxy. */
  readonly path: string;
  /** Method, extra headers and body of every request. */
  readonly request: RequestShape;
  /**
   * When set, only direct and the Gantry systems run this scenario, and every other system is skipped with this
   * reason (e.g. a routing table the other proxies are not given).
   */
  readonly gantryOnly?: string;
  /**
   * When set, h2load paces the requests at this many per second over all connections, to measure latency below
   * saturation instead of the most a system can do (wrk cannot pace, and autocannon's overallRate sends bursts).
   */
  readonly ratePerS?: number;
  /**
   * When set, every system is reached over TLS (HTTPS, the certificate the run made at its start) and this says how
   * the clients speak: `http1`, wrk over HTTPS with keep-alive; `http2`, h2load with `streams` streams on each of the
   * connections (ALPN h2 only); `new-sessions`, h2load opening a connection per request, each with a fresh TLS
   * session (a full handshake); `resumed-sessions`, h2load with one request per connection, resuming its session.
   * Only the systems set up for TLS run such a scenario (gantry, nginx, direct).
   */
  readonly tls?: TlsClient;
  /** With `tls: 'http2'`: streams each connection keeps open (h2load -m). */
  readonly streams?: number;
  /** YAML lines added to the service `upstream` in Gantry's routes file, indented 4 spaces. */
  readonly serviceLines?: string;
  /** The `routes:` entries of Gantry's routes file, indented 2 spaces; default: one route `/bench` to `upstream`. */
  readonly routeLines?: string;
}

export type TlsClient = 'http1' | 'http2' | 'new-sessions' | 'resumed-sessions';

/** The certificate and key every TLS system serves in a run (bench/tls-certificate.ts makes them). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  /** What it is, for the output: "ECDSA P-256" or "RSA 2048". */
  readonly kind: string;
}

/** How many connections a scenario's clients use, for the output: "50 connections", "10 connections × 10 streams". */
export function connectionsText(s: Pick<Scenario, 'connections' | 'tls' | 'streams'>): string {
  if (s.tls === 'new-sessions') return 'a new connection per request, opened at 1.25× the rate the system last reached';
  if (s.tls === 'resumed-sessions') return `${s.connections} connections, each closed after one request and opened again`;
  return s.tls === 'http2' ? `${s.connections} connections × ${s.streams ?? 1} streams` : `${s.connections} connections`;
}

/** A plain GET with no extra headers. */
export const GET: RequestShape = { method: 'GET', headers: {}, body: '' };

/**
 * The routes.yaml Gantry gets for a scenario: listen on 127.0.0.1:0 (the runner reads the port from the "started"
 * line, so the level stays info), access log on, one static service `upstream` in front of `upstream` (its URL), every
 * other setting at its default. With `tls`, a TLS listener on 127.0.0.1:0 too, serving that certificate (HTTP/2 and
 * HTTP/1.1, the default).
 */
export function routesYaml(s: Pick<Scenario, 'name' | 'serviceLines' | 'routeLines'>, upstream: string, tls?: TlsFiles): string {
  const tlsLines = tls ? `tls:\n  listen: 127.0.0.1:0\n  certificates:\n    - { cert: ${JSON.stringify(tls.cert)}, key: ${JSON.stringify(tls.key)} }\n` : '';
  return `# bench scenario ${s.name} (bench/scenarios/table.ts)
listen: 127.0.0.1:0
admin: 127.0.0.1:0
${tlsLines}server:
  drainGraceMs: 2000
log:
  level: info
  access: true
services:
  upstream:
    discovery:
      type: static
      endpoints: [${JSON.stringify(upstream)}]
${s.serviceLines ?? ''}routes:
${s.routeLines ?? `  - name: bench
    match: { path: /bench }
    service: upstream
`}`;
}
