/**
 * The last few minutes of one service's traffic, for the dashboard: a ring of fixed time buckets, each with a request
 * count, a 5xx count, a latency histogram and the last replica counts seen. Recording is a few array writes (no
 * allocation); a bucket is recognised as stale by its slot number and cleared when its ring position is reused. The
 * latency histogram is the scaler's (signals/latency-bins.ts), so the dashboard's percentiles are the scaler's.
 */
import { BIN_COUNT as LATENCY_BUCKETS, binOf, quantileOf } from '../signals/latency-bins.js';

/** Requests, rate, errors and latency percentiles over some span: a bucket or the whole window. */
export interface TrafficCounts {
  readonly requests: number;
  /** Requests per second over the span (over its elapsed part for the current bucket or the gateway's first). */
  readonly rps: number;
  readonly errors: number;
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
}

export interface TrafficPoint extends TrafficCounts {
  /** Bucket start, epoch ms. */
  readonly t: number;
  readonly desiredReplicas: number | null;
  readonly currentReplicas: number | null;
}

export interface TrafficSummary extends TrafficCounts {
  readonly windowMs: number;
}

/** A copy of a TrafficWindow's ring (NaN: no replica count seen), for a cluster worker to send (traffic-and-health.ts). */
export interface TrafficWindowData {
  readonly slots: Float64Array;
  readonly requests: Uint32Array;
  readonly errors: Uint32Array;
  readonly latency: Uint32Array;
  readonly desired: Float64Array;
  readonly current: Float64Array;
}

export class TrafficWindow {
  readonly #slots: Float64Array;
  readonly #requests: Uint32Array;
  readonly #errors: Uint32Array;
  readonly #latency: Uint32Array;
  readonly #desired: Float64Array;
  readonly #current: Float64Array;

  constructor(
    readonly bucketMs: number,
    readonly size: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#slots = new Float64Array(size).fill(-1);
    this.#requests = new Uint32Array(size);
    this.#errors = new Uint32Array(size);
    this.#latency = new Uint32Array(size * LATENCY_BUCKETS);
    this.#desired = new Float64Array(size).fill(NaN);
    this.#current = new Float64Array(size).fill(NaN);
  }

  #position(): number {
    const slot = Math.floor(this.now() / this.bucketMs);
    const i = slot % this.size;
    if (this.#slots[i] !== slot) {
      this.#slots[i] = slot;
      this.#requests[i] = 0;
      this.#errors[i] = 0;
      this.#latency.fill(0, i * LATENCY_BUCKETS, (i + 1) * LATENCY_BUCKETS);
      this.#desired[i] = NaN;
      this.#current[i] = NaN;
    }
    return i;
  }

  record(durationMs: number, error: boolean): void {
    const i = this.#position();
    this.#requests[i]!++;
    if (error) this.#errors[i]!++;
    this.#latency[i * LATENCY_BUCKETS + binOf(durationMs)]!++;
  }

  /** The replica counts seen in this bucket (the last call in a bucket wins). */
  replicas(desired: number, current: number): void {
    const i = this.#position();
    this.#desired[i] = desired;
    this.#current[i] = current;
  }

  /** A copy of the ring; the cluster's IPC (structured clone) carries the typed arrays as bytes. */
  data(): TrafficWindowData {
    return {
      slots: this.#slots.slice(), requests: this.#requests.slice(), errors: this.#errors.slice(),
      latency: this.#latency.slice(), desired: this.#desired.slice(), current: this.#current.slice(),
    };
  }

  /**
   * The sum of several processes' windows of the same service (the workers share the clock, so their buckets line up);
   * at each ring position the newest bucket wins, and the replica counts are the last seen by any.
   */
  static merged(windows: readonly TrafficWindowData[], bucketMs: number, size: number, now: () => number = Date.now): TrafficWindow {
    const w = new TrafficWindow(bucketMs, size, now);
    for (let i = 0; i < size; i++) {
      const newest = Math.max(-1, ...windows.map((d) => d.slots[i] ?? -1));
      if (newest < 0) continue;
      w.#slots[i] = newest;
      for (const d of windows) {
        if (d.slots[i] !== newest) continue;
        w.#requests[i]! += d.requests[i] ?? 0;
        w.#errors[i]! += d.errors[i] ?? 0;
        for (let k = 0; k < LATENCY_BUCKETS; k++) w.#latency[i * LATENCY_BUCKETS + k]! += d.latency[i * LATENCY_BUCKETS + k] ?? 0;
        if (!Number.isNaN(d.desired[i])) w.#desired[i] = d.desired[i]!;
        if (!Number.isNaN(d.current[i])) w.#current[i] = d.current[i]!;
      }
    }
    return w;
  }

  /**
   * The complete buckets of the window since `sinceMs` (the gateway's start), oldest first. The current bucket is
   * left out: a few hundred milliseconds of it rated as a rate swing wildly and drew a dip at "now". Buckets that
   * ended before `sinceMs` are left out too, and the one it falls in is rated over its part after `sinceMs`: the
   * chart starts when the gateway did instead of drawing zeros for the minutes before.
   */
  points(sinceMs = -Infinity): TrafficPoint[] {
    const slotNow = Math.floor(this.now() / this.bucketMs);
    const first = Math.max(slotNow - this.size + 1, Math.floor(sinceMs / this.bucketMs));
    const out: TrafficPoint[] = [];
    for (let slot = first; slot < slotNow; slot++) {
      const i = ((slot % this.size) + this.size) % this.size;
      const live = this.#slots[i] === slot;
      const requests = live ? this.#requests[i]! : 0;
      const startMs = slot * this.bucketMs;
      const elapsedMs = Math.max(startMs + this.bucketMs - Math.max(startMs, sinceMs), 1);
      const row = live ? this.#latency.subarray(i * LATENCY_BUCKETS, (i + 1) * LATENCY_BUCKETS) : null;
      out.push({
        t: startMs, requests, rps: round(requests * 1000 / elapsedMs), errors: live ? this.#errors[i]! : 0,
        p50Ms: row && quantileOf(row, requests, 0.5), p90Ms: row && quantileOf(row, requests, 0.9), p99Ms: row && quantileOf(row, requests, 0.99),
        desiredReplicas: live && !Number.isNaN(this.#desired[i]) ? this.#desired[i]! : null,
        currentReplicas: live && !Number.isNaN(this.#current[i]) ? this.#current[i]! : null,
      });
    }
    return out;
  }

  /** Totals and percentiles over the last `windowMs` (whole buckets, the current one included). */
  summary(windowMs: number): TrafficSummary {
    const nowMs = this.now();
    const slotNow = Math.floor(nowMs / this.bucketMs);
    const count = Math.max(1, Math.min(this.size, Math.ceil(windowMs / this.bucketMs)));
    const merged = new Uint32Array(LATENCY_BUCKETS);
    let requests = 0;
    let errors = 0;
    for (let slot = slotNow - count + 1; slot <= slotNow; slot++) {
      const i = ((slot % this.size) + this.size) % this.size;
      if (this.#slots[i] !== slot) continue;
      requests += this.#requests[i]!;
      errors += this.#errors[i]!;
      const base = i * LATENCY_BUCKETS;
      for (let k = 0; k < LATENCY_BUCKETS; k++) merged[k]! += this.#latency[base + k]!;
    }
    const spanMs = (count - 1) * this.bucketMs + Math.max(nowMs - slotNow * this.bucketMs, 1);
    return {
      windowMs: count * this.bucketMs, requests, rps: round(requests * 1000 / spanMs), errors,
      p50Ms: quantileOf(merged, requests, 0.5), p90Ms: quantileOf(merged, requests, 0.9), p99Ms: quantileOf(merged, requests, 0.99),
    };
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** One TrafficWindow per service, for the services of the loaded config. */
export class TrafficStats {
  readonly #windows = new Map<string, TrafficWindow>();

  constructor(
    readonly bucketMs = 5000,
    readonly size = 60,
    private readonly now: () => number = Date.now,
  ) {}

  window(service: string): TrafficWindow {
    let w = this.#windows.get(service);
    if (!w) {
      w = new TrafficWindow(this.bucketMs, this.size, this.now);
      this.#windows.set(service, w);
    }
    return w;
  }

  /** Drops the windows of services no longer configured (their history is gone with them). */
  retain(services: Iterable<string>): void {
    const keep = new Set(services);
    for (const name of this.#windows.keys()) if (!keep.has(name)) this.#windows.delete(name);
  }

  entries(): IterableIterator<[string, TrafficWindow]> {
    return this.#windows.entries();
  }
}
