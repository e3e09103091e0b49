/**
 * GCRA (the generic cell rate algorithm): a bucket is one number, its theoretical arrival time (TAT). Each request
 * moves it `intervalMs` on from max(TAT, now); a request is allowed when the TAT stays within `burst` intervals of
 * now. Exact (no window edges), O(1) per request, and state small enough for one Redis key per bucket.
 */
export interface GcraLimit {
  /** Time per request at the steady rate: `per` ÷ `requests`. */
  readonly intervalMs: number;
  /** How many requests may come at once from a full bucket. */
  readonly burst: number;
}

export interface GcraDecision {
  readonly allowed: boolean;
  /** Requests still allowed at once after this one. */
  readonly remaining: number;
  /** Until the bucket is full again. */
  readonly resetMs: number;
  /** Refused: until one more request would be allowed; 0 when allowed. */
  readonly retryAfterMs: number;
}

/** A bucket: its TAT, and the interval it was counted in. */
export interface GcraState {
  tat: number;
  intervalMs: number;
}

/**
 * One request against a bucket (undefined: full): the decision and the TAT to store. A bucket counted in another
 * interval (the limit changed on reload) is rescaled first, so the requests it holds still count, in the new limit.
 */
export function gcra(state: GcraState | undefined, nowMs: number, limit: GcraLimit): { decision: GcraDecision; tat: number } {
  const { intervalMs, burst } = limit;
  let tat = state?.tat;
  if (state !== undefined && tat !== undefined && tat > nowMs && state.intervalMs !== intervalMs) tat = nowMs + (tat - nowMs) * (intervalMs / state.intervalMs);
  const from = tat === undefined || tat < nowMs ? nowMs : tat;
  const allowAt = from + intervalMs - burst * intervalMs;
  if (nowMs < allowAt) return { decision: { allowed: false, remaining: 0, resetMs: from - nowMs, retryAfterMs: allowAt - nowMs }, tat: from };
  const next = from + intervalMs;
  return { decision: { allowed: true, remaining: Math.floor((nowMs + burst * intervalMs - next) / intervalMs), resetMs: next - nowMs, retryAfterMs: 0 }, tat: next };
}

/** How often full buckets are dropped (a full bucket is the same as none). */
const SWEEP_EVERY_MS = 10_000;

/** Buckets by key, in memory: one gateway's, or with --workers the primary's for every worker. */
export class GcraTable {
  readonly #buckets = new Map<string, GcraState>();
  #sweptAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  take(key: string, limit: GcraLimit): GcraDecision {
    const nowMs = this.now();
    if (nowMs - this.#sweptAt > SWEEP_EVERY_MS) this.#sweep(nowMs);
    const state = this.#buckets.get(key);
    const { decision, tat } = gcra(state, nowMs, limit);
    if (state === undefined) this.#buckets.set(key, { tat, intervalMs: limit.intervalMs });
    else { state.tat = tat; state.intervalMs = limit.intervalMs; }
    return decision;
  }

  get size(): number {
    return this.#buckets.size;
  }

  #sweep(nowMs: number): void {
    this.#sweptAt = nowMs;
    for (const [key, state] of this.#buckets) if (state.tat <= nowMs) this.#buckets.delete(key);
  }
}
