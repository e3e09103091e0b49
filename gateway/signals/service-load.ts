import type { WindowSignals } from '../plugin-api/scaler.js';
import { BIN_COUNT, binOf } from './latency-bins.js';
import { ringSecondsFor, SECOND_MS, WindowSum, wholeSecondsOf, windowSpanMs, type LoadSecond, type WindowTotals } from './window-sum.js';

/**
 * The load signals of one service over sliding windows, kept in a ring of per-second buckets that is allocated once:
 * a request costs a few array writes (no allocation, no sorting), a window is summed only when the scaling loop asks.
 *
 * Each bucket holds: requests arrived and finished, 5xx answers, a latency histogram (latency-bins.ts), and the time integral
 * and peak of the in-flight and waiting counts, so means are time-weighted (a request in flight for 10 s weighs ten
 * times one in flight for 1 s, as Knative's queue-proxy measures concurrency).
 */
export class ServiceLoad {
  readonly ringSeconds: number;
  inFlight = 0;
  waiting = 0;
  /** Clock reading of the last finished request, or of creation. */
  lastRequestAt: number;
  readonly createdAt: number;
  #second: number;
  #lastChangeAt: number;
  readonly #slotSecond: Float64Array;
  readonly #arrivals: Float64Array;
  readonly #requests: Float64Array;
  readonly #errors: Float64Array;
  readonly #inFlightMs: Float64Array;
  readonly #inFlightPeak: Float64Array;
  readonly #waitingMs: Float64Array;
  readonly #waitingPeak: Float64Array;
  readonly #latency: Uint32Array;
  readonly #sum = new WindowSum();

  /** `windowMs`: the longest window that will be asked for (the stable window). */
  constructor(readonly windowMs: number, now: number) {
    this.ringSeconds = ringSecondsFor(windowMs);
    const n = this.ringSeconds;
    this.#slotSecond = new Float64Array(n).fill(-1);
    this.#arrivals = new Float64Array(n);
    this.#requests = new Float64Array(n);
    this.#errors = new Float64Array(n);
    this.#inFlightMs = new Float64Array(n);
    this.#inFlightPeak = new Float64Array(n);
    this.#waitingMs = new Float64Array(n);
    this.#waitingPeak = new Float64Array(n);
    this.#latency = new Uint32Array(n * BIN_COUNT);
    this.createdAt = now;
    this.lastRequestAt = now;
    this.#second = Math.floor(now / SECOND_MS);
    this.#lastChangeAt = now;
    this.#reset(this.#second % n, this.#second);
  }

  #reset(slot: number, second: number): void {
    this.#slotSecond[slot] = second;
    this.#arrivals[slot] = 0;
    this.#requests[slot] = 0;
    this.#errors[slot] = 0;
    this.#inFlightMs[slot] = 0;
    this.#inFlightPeak[slot] = this.inFlight;
    this.#waitingMs[slot] = 0;
    this.#waitingPeak[slot] = this.waiting;
    this.#latency.fill(0, slot * BIN_COUNT, slot * BIN_COUNT + BIN_COUNT);
  }

  /** Brings the ring up to `now`: integrates the counts since the last change, opens buckets for new seconds. */
  advance(now: number): number {
    const n = this.ringSeconds;
    let slot = this.#second % n;
    if (now < this.#lastChangeAt) now = this.#lastChangeAt;   // a clock that steps back must not subtract time
    const second = Math.floor(now / SECOND_MS);
    if (second !== this.#second) {
      // Close the current second, then fill any whole seconds without events, then open the new one.
      const end = (this.#second + 1) * SECOND_MS;
      this.#inFlightMs[slot] = (this.#inFlightMs[slot] as number) + this.inFlight * (end - this.#lastChangeAt);
      this.#waitingMs[slot] = (this.#waitingMs[slot] as number) + this.waiting * (end - this.#lastChangeAt);
      for (let s = Math.max(this.#second + 1, second - n + 1); s <= second; s++) {
        slot = s % n;
        this.#reset(slot, s);
        if (s < second) {
          this.#inFlightMs[slot] = this.inFlight * SECOND_MS;
          this.#waitingMs[slot] = this.waiting * SECOND_MS;
        }
      }
      this.#second = second;
      this.#lastChangeAt = second * SECOND_MS;
    }
    this.#inFlightMs[slot] = (this.#inFlightMs[slot] as number) + this.inFlight * (now - this.#lastChangeAt);
    this.#waitingMs[slot] = (this.#waitingMs[slot] as number) + this.waiting * (now - this.#lastChangeAt);
    this.#lastChangeAt = now;
    return slot;
  }

  /** A request for this service was routed (hot path). */
  started(now: number): void {
    const slot = this.advance(now);
    this.#arrivals[slot] = (this.#arrivals[slot] as number) + 1;
    const v = ++this.inFlight;
    if (v > (this.#inFlightPeak[slot] as number)) this.#inFlightPeak[slot] = v;
  }

  /** A request finished after `durationMs`; `error`: answered 5xx (hot path). */
  finished(now: number, durationMs: number, error: boolean): void {
    const slot = this.advance(now);
    if (this.inFlight > 0) this.inFlight--;
    this.#requests[slot] = (this.#requests[slot] as number) + 1;
    if (error) this.#errors[slot] = (this.#errors[slot] as number) + 1;
    this.#latency[slot * BIN_COUNT + binOf(durationMs)]!++;
    this.lastRequestAt = now;
  }

  /** The held-request count changed by `delta` (+1 held, -1 released or given up). */
  waitingChanged(now: number, delta: number): void {
    const slot = this.advance(now);
    this.waiting = Math.max(0, this.waiting + delta);
    if (this.waiting > (this.#waitingPeak[slot] as number)) this.#waitingPeak[slot] = this.waiting;
  }

  /**
   * Sums the last `windowMs` (at most the ring): whole seconds plus the current partial one. Right after creation
   * the window is shorter (`spanMs` says how long), and means are over what was seen, never padded with zeros.
   */
  window(now: number, windowMs: number): WindowSignals {
    return this.#sum.signals(this.#sumWindow(now, windowMs), windowMs);
  }

  /** The same window as additive sums, for a fleet report (gateway/fleet/). */
  totals(now: number, windowMs: number): WindowTotals {
    return this.#sum.totals(this.#sumWindow(now, windowMs));
  }

  /** Fills #sum with the last `windowMs`; returns the span it covers. */
  #sumWindow(now: number, windowMs: number): number {
    this.advance(now);
    const n = this.ringSeconds;
    const whole = wholeSecondsOf(n, windowMs);
    const current = this.#second;
    const sum = this.#sum.reset();
    const bins = sum.bins;
    for (let k = 0; k <= whole; k++) {
      const s = current - k;
      const i = ((s % n) + n) % n;
      if (this.#slotSecond[i] !== s) continue;
      sum.arrivals += this.#arrivals[i] as number;
      sum.completed += this.#requests[i] as number;
      sum.errors += this.#errors[i] as number;
      sum.inFlightMs += this.#inFlightMs[i] as number;
      sum.waitingMs += this.#waitingMs[i] as number;
      sum.peaks(this.#inFlightPeak[i] as number, this.#waitingPeak[i] as number);
      const base = i * BIN_COUNT;
      for (let b = 0; b < BIN_COUNT; b++) bins[b] = (bins[b] as number) + (this.#latency[base + b] as number);
    }
    return windowSpanMs(whole, now, current, this.createdAt);
  }

  /**
   * The seconds from `fromSecond` up to now (the current one partial) that saw anything, for a cluster worker to ship
   * to the primary. Allocates: called every few hundred milliseconds, never per request.
   */
  seconds(now: number, fromSecond: number): LoadSecond[] {
    this.advance(now);
    const n = this.ringSeconds;
    const out: LoadSecond[] = [];
    for (let s = Math.max(fromSecond, this.#second - n + 1); s <= this.#second; s++) {
      const i = ((s % n) + n) % n;
      if (this.#slotSecond[i] !== s) continue;
      const latency: number[] = [];
      const base = i * BIN_COUNT;
      for (let b = 0; b < BIN_COUNT; b++) if (this.#latency[base + b]) latency.push(b, this.#latency[base + b] as number);
      const second: LoadSecond = {
        second: s, arrivals: this.#arrivals[i] as number, completed: this.#requests[i] as number, errors: this.#errors[i] as number,
        inFlightMs: this.#inFlightMs[i] as number, inFlightPeak: this.#inFlightPeak[i] as number,
        waitingMs: this.#waitingMs[i] as number, waitingPeak: this.#waitingPeak[i] as number, latency,
      };
      if (second.arrivals || second.completed || second.inFlightMs || second.inFlightPeak || second.waitingMs || second.waitingPeak) out.push(second);
    }
    return out;
  }
}
