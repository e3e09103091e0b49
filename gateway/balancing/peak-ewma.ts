/**
 * Peak-EWMA latency (Finagle, Linkerd): a slower answer than the estimate replaces it at once (the peak), faster
 * ones pull it down exponentially; with no answers the estimate decays toward zero, so an endpoint that was briefly
 * slow gets probed again instead of being starved forever. A failure counts as a slow answer (`penalize`), so an
 * endpoint that fails fast never looks attractive.
 */
/** A failed try costs at most this much: slower than any answer a balancer should prefer. */
export const PENALTY_MAX_MS = 10_000;

export class PeakEwma {
  #estimateMs: number;
  #at: number;

  /** @param tauMs decay time constant (Linkerd's default is 10 s). */
  constructor(private readonly tauMs = 10_000, initialMs = 0, now = 0) {
    this.#estimateMs = initialMs;
    this.#at = now;
  }

  estimate(now: number): number {
    const elapsed = now - this.#at;
    return elapsed > 0 ? this.#estimateMs * Math.exp(-elapsed / this.tauMs) : this.#estimateMs;
  }

  observe(rttMs: number, now: number): void {
    const current = this.estimate(now);
    if (rttMs > current) {
      this.#estimateMs = rttMs;
    } else {
      const w = Math.exp(-Math.max(now - this.#at, 0) / this.tauMs);
      this.#estimateMs = current * w + rttMs * (1 - w);
    }
    this.#at = now;
  }

  /**
   * A failed request: as slow as five times the current estimate, at least `floorMs`, at most PENALTY_MAX_MS (unless
   * real answers were slower). Unbounded, failures compound: five timeouts in a row priced an endpoint at 13 minutes,
   * which kept it starved for a minute after it recovered.
   */
  penalize(now: number, floorMs = 250): void {
    const estimate = this.estimate(now);
    this.observe(Math.max(Math.min(estimate * 5, PENALTY_MAX_MS), floorMs, estimate), now);
  }
}
