import type { EndpointState } from '../upstream/endpoint-state.js';

/** Circuit breaker states, as cockatiel names them (CircuitState Closed, Open, HalfOpen, Isolated). */
export const BREAKER_STATES = ['closed', 'open', 'half-open', 'isolated'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export type HealthState = 'healthy' | 'unhealthy';

/** What the admin API, the dashboard and the metrics say about one endpoint beyond its in-flight count. */
export interface EndpointHealth {
  /** 'unhealthy' once active health checks say so (outlier detection ejects instead); without checks, always healthy. */
  readonly health: HealthState;
  readonly breaker: BreakerState;
  /** Taken out of balancing for a while (outlier ejection); it stays listed by discovery. */
  readonly ejected: boolean;
  /** Exponentially weighted moving average of its latency; null until something measures it. */
  readonly ewmaMs: number | null;
  /** When health, breaker or ejection last changed (epoch ms); null if never. */
  readonly changedAt: number | null;
}

/**
 * An endpoint's entry before anything was reported on it: healthy, breaker closed, not ejected, latency unmeasured.
 * The board's entries only record transitions: EndpointHealth (resilience/endpoint-health.ts) reports them through
 * EndpointEvents (upstream/endpoint-events.ts), which GatewayMetrics implements by updating the entry and counting the
 * change when the state differs from the entry's. What the board shows is read from the endpoint itself (`get`).
 */
export const DEFAULT_ENDPOINT_HEALTH: EndpointHealth = Object.freeze({
  health: 'healthy', breaker: 'closed', ejected: false, ewmaMs: null, changedAt: null,
});

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Per-endpoint health, keyed by the EndpointState object itself: the entry lives exactly as long as the registry
 * keeps the endpoint (a WeakMap needs no pruning when discovery drops it), and label values can only ever be
 * addresses that discovery produced.
 */
export class EndpointHealthBoard {
  readonly #entries = new WeakMap<EndpointState, Mutable<EndpointHealth>>();

  /**
   * The endpoint's state read from the resilience code's own records (EndpointState.health and .latency), so the
   * board can never drift from what the balancer sees; only `changedAt` is the board's.
   */
  get(endpoint: EndpointState, nowMs = Date.now()): EndpointHealth {
    const h = endpoint.health;
    const ewma = endpoint.latency.estimate(nowMs);
    return {
      health: h.activeHealthy ? 'healthy' : 'unhealthy',
      breaker: h.breaker === null ? 'closed' : BREAKER_STATES[h.breaker.state] ?? 'closed',
      ejected: nowMs < h.ejectedUntil,
      ewmaMs: ewma > 0 ? Math.round(ewma * 100) / 100 : null,
      changedAt: this.#entries.get(endpoint)?.changedAt ?? null,
    };
  }

  /** Applies `patch`; returns the state before it. `changedAt` moves only when health, breaker or ejection changed. */
  update(endpoint: EndpointState, patch: Partial<Pick<EndpointHealth, 'health' | 'breaker' | 'ejected'>>, nowMs: number): EndpointHealth {
    let entry = this.#entries.get(endpoint);
    const before = entry ? { ...entry } : DEFAULT_ENDPOINT_HEALTH;
    if (!entry) {
      entry = { ...DEFAULT_ENDPOINT_HEALTH };
      this.#entries.set(endpoint, entry);
    }
    Object.assign(entry, patch);
    if (entry.health !== before.health || entry.breaker !== before.breaker || entry.ejected !== before.ejected) entry.changedAt = nowMs;
    return before;
  }
}
