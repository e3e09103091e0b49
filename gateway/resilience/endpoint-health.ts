import { CircuitState, type CircuitBreakerPolicy } from 'cockatiel';
import { stableStringify } from '../config/stable-stringify.js';
import type { BreakerConfig, OutlierConfig } from '../config/gateway-config.js';
import { BREAKER_STATES, buildBreaker, type BreakerState, type EndpointBreaker } from './circuit-breaker.js';

// A probe that never reported back (its request was dropped before it ran) stops blocking new probes after this.
const STALE_PROBE_MS = 30_000;

export type HealthView = 'healthy' | 'ejected' | 'unhealthy' | 'open' | 'half-open';

/**
 * Everything that decides whether one endpoint may take traffic, kept with the endpoint so it survives reloads:
 *  - a circuit breaker (circuit-breaker.ts) fed by gateway-level failures (connect refused or timed out, reset
 *    before a response, per-try timeout, an answer that is not HTTP). Open: the endpoint leaves the balancer's
 *    choice; once `probeAt` passes, exactly one request is let through as the probe;
 *  - passive outlier detection fed by 5xx answers (a malformed answer counts as a 502): consecutive5xx of them eject
 *    the endpoint for baseEjectionMs × number of ejections (up to maxEjectionMs), unless that would pass
 *    maxEjectionPercent;
 *  - active health checks (health-check.ts) set `activeHealthy`.
 */
export class EndpointHealth {
  /** Told about transitions (breaker state, active health, ejection): metrics and the admin board. */
  onChange: ((change: { breaker?: BreakerState; healthy?: boolean; ejected?: boolean }) => void) | undefined;
  circuit: EndpointBreaker | null = null;
  #breakerKey = '';
  /** When the open breaker lets its probe through (ms since epoch; cockatiel uses Date.now()). */
  probeAt = 0;
  probingSince = 0;
  consecutive5xx = 0;
  ejectedUntil = 0;
  ejections = 0;
  activeHealthy = true;
  /** Consecutive health-check results in the current direction, for the thresholds. */
  activeStreak = 0;

  /** The breaker's cockatiel policy, null when the service has none. */
  get breaker(): CircuitBreakerPolicy | null {
    return this.circuit === null ? null : this.circuit.policy;
  }

  /** (Re)builds the breaker when its settings change; the open/closed state carries over (cockatiel toJSON). */
  configure(cfg: BreakerConfig): void {
    const key = stableStringify(cfg);
    if (key === this.#breakerKey) return;
    this.#breakerKey = key;
    if (!cfg.enabled) { this.circuit = null; return; }
    this.circuit = buildBreaker(cfg, this.circuit?.policy.toJSON(), (at) => { this.probeAt = at; });
    this.circuit.policy.onStateChange((state) => {
      if (state === CircuitState.Closed || state === CircuitState.Open) this.probingSince = 0;
      this.onChange?.({ breaker: BREAKER_STATES[state] });
    });
  }

  /** May this endpoint take a new request now? (Panic mode, in the selector, may ignore ejection and checks.) */
  usable(now: number, ignoreSoftFailures: boolean): boolean {
    const b = this.circuit === null ? null : this.circuit.policy;
    if (b !== null && b.state !== CircuitState.Closed) {
      if (b.state !== CircuitState.Open) return false;             // half-open: its one probe is running
      if (this.probingSince !== 0 && now - this.probingSince < STALE_PROBE_MS) return false;
      return now >= this.probeAt;                                 // the probe is due
    }
    return ignoreSoftFailures || (now >= this.ejectedUntil && this.activeHealthy);
  }

  /** Breaker closed, not ejected, passing checks: counts toward the panic threshold. */
  available(now: number): boolean {
    return (this.circuit === null || this.circuit.policy.state === CircuitState.Closed) && now >= this.ejectedUntil && this.activeHealthy;
  }

  /** Called when the selector hands out the endpoint; marks the probe when its breaker is open. */
  picked(now: number): void {
    if (this.circuit !== null && this.circuit.policy.state === CircuitState.Open) this.probingSince = now;
  }

  /**
   * An upstream answer: 5xx counts toward ejection, anything else resets the count. `mayEject` says whether the
   * pool can lose one more endpoint without passing maxEjectionPercent.
   */
  recordStatus(status: number, cfg: OutlierConfig, now: number, mayEject: () => boolean): boolean {
    if (status < 500) {
      this.consecutive5xx = 0;
      if (this.ejections > 0 && now - this.ejectedUntil > cfg.maxEjectionMs) this.ejections = 0;
      return false;
    }
    if (!cfg.enabled || ++this.consecutive5xx < cfg.consecutive5xx || now < this.ejectedUntil || !mayEject()) return false;
    this.ejections++;
    this.ejectedUntil = now + Math.min(cfg.baseEjectionMs * this.ejections, cfg.maxEjectionMs);
    this.consecutive5xx = 0;
    this.onChange?.({ ejected: true });
    return true;
  }

  /** Active health checks passed or failed their threshold. */
  setActiveHealthy(healthy: boolean): void {
    this.activeHealthy = healthy;
    this.activeStreak = 0;
    this.onChange?.({ healthy });
  }

  view(now: number): HealthView {
    const b = this.breaker;
    if (b !== null && b.state === CircuitState.Open) return 'open';
    if (b !== null && b.state === CircuitState.HalfOpen) return 'half-open';
    if (!this.activeHealthy) return 'unhealthy';
    if (now < this.ejectedUntil) return 'ejected';
    return 'healthy';
  }
}
