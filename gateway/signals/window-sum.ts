import type { WindowSignals } from '../plugin-api/scaler.js';
import { BIN_COUNT, quantileOf } from './latency-bins.js';

export const SECOND_MS = 1000;

/**
 * One second of one service's load, as a cluster worker ships it to the primary (gateway/signals/summed-load.ts).
 * `second` is floor(ms / 1000) on the recorder's clock; the in-flight and waiting integrals are in request-ms.
 */
export interface LoadSecond {
  readonly second: number;
  readonly arrivals: number;
  readonly completed: number;
  readonly errors: number;
  readonly inFlightMs: number;
  readonly inFlightPeak: number;
  readonly waitingMs: number;
  readonly waitingPeak: number;
  /** The latency histogram (latency-bins.ts) as sparse pairs: bin, count, bin, count, … */
  readonly latency: readonly number[];
}

/**
 * A window's sums, additive so that windows recorded by several gateways sum (gateway/fleet/ reports them). Integrals
 * in request-ms over `spanMs`; `latency` as in LoadSecond.
 */
export interface WindowTotals extends Omit<LoadSecond, 'second'> {
  readonly spanMs: number;
}

/** Seconds a ring keeps for a longest window of `windowMs`: the whole window plus the current, partial second. */
export function ringSecondsFor(windowMs: number): number {
  return Math.max(2, Math.ceil(windowMs / SECOND_MS) + 1);
}

/** Whole seconds before the current one that a window of `windowMs` sums (so a window is never shorter than asked). */
export function wholeSecondsOf(ringSeconds: number, windowMs: number): number {
  return Math.min(ringSeconds - 1, Math.max(1, Math.ceil(windowMs / SECOND_MS)));
}

/**
 * How long a window summed over `whole` seconds plus the current partial one has data: right after recording began
 * it is shorter than the window, and means are over what was seen, never padded with zeros.
 */
export function windowSpanMs(whole: number, now: number, currentSecond: number, createdAt: number): number {
  const coveredMs = whole * SECOND_MS + (now - currentSecond * SECOND_MS);
  return Math.max(1, Math.min(coveredMs, now - createdAt));
}

/**
 * The sums over the seconds of one window, turned into WindowSignals. One per ring, reused for every window read
 * (the histogram is allocated once).
 */
export class WindowSum {
  arrivals = 0;
  completed = 0;
  errors = 0;
  inFlightMs = 0;
  inFlightPeak = 0;
  waitingMs = 0;
  waitingPeak = 0;
  readonly bins = new Float64Array(BIN_COUNT);

  reset(): this {
    this.arrivals = this.completed = this.errors = this.inFlightMs = this.inFlightPeak = this.waitingMs = this.waitingPeak = 0;
    this.bins.fill(0);
    return this;
  }

  /** Adds a shipped second's counts and integrals (peaks are the caller's: they are maxima, not sums). */
  add(s: LoadSecond): void {
    this.arrivals += s.arrivals;
    this.completed += s.completed;
    this.errors += s.errors;
    this.inFlightMs += s.inFlightMs;
    this.waitingMs += s.waitingMs;
    const { latency } = s;
    for (let k = 0; k + 1 < latency.length; k += 2) {
      const bin = latency[k] as number;
      if (bin >= 0 && bin < BIN_COUNT) this.bins[bin] = (this.bins[bin] as number) + (latency[k + 1] as number);
    }
  }

  /**
   * Adds another recorder's window, its counts and integrals scaled by `factor` (the ratio of the spans, so a shorter
   * or longer window counts at its rate). Peaks add up: an upper bound of the peak over both, as SummedLoad's.
   */
  addTotals(t: WindowTotals, factor: number): void {
    this.arrivals += t.arrivals * factor;
    this.completed += t.completed * factor;
    this.errors += t.errors * factor;
    this.inFlightMs += t.inFlightMs * factor;
    this.waitingMs += t.waitingMs * factor;
    this.inFlightPeak += t.inFlightPeak;
    this.waitingPeak += t.waitingPeak;
    const { latency } = t;
    for (let k = 0; k + 1 < latency.length; k += 2) {
      const bin = latency[k] as number;
      if (bin >= 0 && bin < BIN_COUNT) this.bins[bin] = (this.bins[bin] as number) + (latency[k + 1] as number) * factor;
    }
  }

  /** The sums as plain data (allocates: once per service and report, never per request). */
  totals(spanMs: number): WindowTotals {
    const latency: number[] = [];
    for (let b = 0; b < BIN_COUNT; b++) if (this.bins[b]) latency.push(b, this.bins[b] as number);
    return {
      spanMs, arrivals: this.arrivals, completed: this.completed, errors: this.errors, inFlightMs: this.inFlightMs,
      inFlightPeak: this.inFlightPeak, waitingMs: this.waitingMs, waitingPeak: this.waitingPeak, latency,
    };
  }

  peaks(inFlightPeak: number, waitingPeak: number): void {
    if (inFlightPeak > this.inFlightPeak) this.inFlightPeak = inFlightPeak;
    if (waitingPeak > this.waitingPeak) this.waitingPeak = waitingPeak;
  }

  signals(spanMs: number, windowMs: number): WindowSignals {
    const { arrivals, completed, errors, bins } = this;
    return {
      spanMs, windowMs, requests: arrivals, completed,
      // Arrivals, not completions: an overloaded service completes at its capacity, but demand is what arrives.
      requestsPerSecond: arrivals / (spanMs / SECOND_MS),
      inFlightMean: this.inFlightMs / spanMs,
      inFlightPeak: this.inFlightPeak,
      latencyP50Ms: quantileOf(bins, completed, 0.5),
      latencyP95Ms: quantileOf(bins, completed, 0.95),
      latencyP99Ms: quantileOf(bins, completed, 0.99),
      errorRatio: completed === 0 ? 0 : errors / completed,
      waitingMean: this.waitingMs / spanMs,
      waitingPeak: this.waitingPeak,
    };
  }
}
