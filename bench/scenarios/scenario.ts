import type { RequestShape } from '../load-generator.js';

/** One benchmark setup: what the upstream answers, what the clients send, and how Gantry is configured in front. */
export interface Scenario {
  /** File name without extension; `--scenario NAME` picks it. */
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
   * When set, requests are paced at this many per second over all connections (wrk cannot
   * pace and autocannon's overallRate sends bursts, so bench/paced-child.ts runs these), to measure latency below
   * saturation instead of the most a system can do.
   */
  readonly ratePerS?: number;
  /**
   * Gantry's routes.yaml in front of `upstream` (http://127.0.0.1:PORT). It must listen on 127.0.0.1:0 with info-level
   * logging: the runner reads the bound port from the "started" log line.
   */
  routesYaml(upstream: string): string;
}

/** A plain GET with no extra headers. */
export const GET: RequestShape = { method: 'GET', headers: {}, body: '' };
