import { BREAKER_STATES, type BreakerState } from '../resilience/circuit-breaker.js';
import type { EndpointState } from '../upstream/endpoint-state.js';

export type HealthState = 'healthy' | 'unhealthy';

/** What the admin API, the dashboard and the metrics say about one endpoint beyond its in-flight count. */
export interface EndpointHealthReport {
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

/** The last reported state of an endpoint, which a report is compared with to tell a change from a repeat. */
interface Reported {
  health: HealthState;
  breaker: BreakerState;
  /**
   * The end of the last ejection reported (EndpointState.health.ejectedUntil then). An ejection ends by time, with
   * no report, so a report is a new ejection when the endpoint's end differs from this one.
   */
  ejectedUntil: number | null;
  changedAt: number | null;
}

/**
 * Per-endpoint health for the admin side. What it shows is read from the endpoint's own records
 * (EndpointState.health and .latency), so it can never drift from what the balancer sees; what it keeps is the last
 * state reported through EndpointEvents (upstream/endpoint-events.ts, which UpstreamMetrics implements) and when that
 * changed. Keyed by the EndpointState object itself: an entry lives exactly as long as the registry keeps the
 * endpoint (a WeakMap needs no pruning when discovery drops it).
 */
export class EndpointHealthBoard {
  readonly #reported = new WeakMap<EndpointState, Reported>();

  get(endpoint: EndpointState, nowMs = Date.now()): EndpointHealthReport {
    const h = endpoint.health;
    const ewma = endpoint.latency.estimate(nowMs);
    return {
      health: h.activeHealthy ? 'healthy' : 'unhealthy',
      breaker: h.breaker === null ? 'closed' : BREAKER_STATES[h.breaker.state] ?? 'closed',
      ejected: nowMs < h.ejectedUntil,
      ewmaMs: ewma > 0 ? Math.round(ewma * 100) / 100 : null,
      changedAt: this.#reported.get(endpoint)?.changedAt ?? null,
    };
  }

  /**
   * Records a report; true when it changed the last reported state (healthy, closed and not ejected before any),
   * and only then `changedAt` moves: a repeated report is not a transition.
   */
  report(endpoint: EndpointState, patch: { health?: HealthState; breaker?: BreakerState; ejected?: boolean }, nowMs: number): boolean {
    let entry = this.#reported.get(endpoint);
    if (!entry) {
      entry = { health: 'healthy', breaker: 'closed', ejectedUntil: null, changedAt: null };
      this.#reported.set(endpoint, entry);
    }
    let changed = false;
    if (patch.health !== undefined && patch.health !== entry.health) { entry.health = patch.health; changed = true; }
    if (patch.breaker !== undefined && patch.breaker !== entry.breaker) { entry.breaker = patch.breaker; changed = true; }
    if (patch.ejected !== undefined) {
      const until = patch.ejected ? endpoint.health.ejectedUntil : null;
      if (until !== entry.ejectedUntil) { entry.ejectedUntil = until; changed = true; }
    }
    if (changed) entry.changedAt = nowMs;
    return changed;
  }
}
