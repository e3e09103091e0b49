/** A retry backoff: the first wait `initialMs`, doubling with each further failure up to `maxMs`. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * The exponential step after failure number `failure` (1 for the first): initialMs × 2^(failure − 1), at most maxMs.
 * Callers add their jitter on top. The exponent is capped so that a long outage never computes 0 × Infinity.
 */
export function backoffStepMs(failure: number, backoff: Backoff): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(failure - 1, 30));
}
