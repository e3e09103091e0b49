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
  /** YAML lines added to the service `upstream` in Gantry's routes file, indented 4 spaces. */
  readonly serviceLines?: string;
  /** The `routes:` entries of Gantry's routes file, indented 2 spaces; default: one route `/bench` to `upstream`. */
  readonly routeLines?: string;
}

/** A plain GET with no extra headers. */
export const GET: RequestShape = { method: 'GET', headers: {}, body: '' };

/**
 * The routes.yaml Gantry gets for a scenario: listen on 127.0.0.1:0 (the runner reads the port from the "started"
 * line, so the level stays info), access log on, one static service `upstream` in front of `upstream` (its URL), every
 * other setting at its default.
 */
export function routesYaml(s: Pick<Scenario, 'name' | 'serviceLines' | 'routeLines'>, upstream: string): string {
  return `# bench scenario ${s.name} (bench/scenarios/table.ts)
listen: 127.0.0.1:0
admin: 127.0.0.1:0
server:
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
