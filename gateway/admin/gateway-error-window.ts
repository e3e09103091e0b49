/**
 * The answers the gateway made itself over the last few minutes, by error code, for the dashboard: a 404 of no route
 * or a 503 of no endpoint is not an upstream's answer, and a service's 5xx line does not show it (a 404 matched no
 * service at all). A ring of fixed time buckets like TrafficWindow's, one count per code of gateway/errors.ts in each;
 * recording is two array writes and happens only for error answers (RequestMetrics.requestFinished).
 */
import { ERRORS, type ErrorCode } from '../errors.js';

const CODES = Object.keys(ERRORS) as ErrorCode[];
const INDEX = new Map(CODES.map((code, i) => [code, i]));

export interface GatewayErrorCount {
  readonly code: ErrorCode;
  readonly status: number;
  readonly count: number;
}

export class GatewayErrorWindow {
  readonly #slots: Float64Array;
  readonly #counts: Uint32Array;

  constructor(
    readonly bucketMs: number,
    readonly size: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#slots = new Float64Array(size).fill(-1);
    this.#counts = new Uint32Array(size * CODES.length);
  }

  record(code: ErrorCode): void {
    const slot = Math.floor(this.now() / this.bucketMs);
    const i = slot % this.size;
    if (this.#slots[i] !== slot) {
      this.#slots[i] = slot;
      this.#counts.fill(0, i * CODES.length, (i + 1) * CODES.length);
    }
    this.#counts[i * CODES.length + INDEX.get(code)!]!++;
  }

  /** Each code's count over the window (the current bucket included), indexed as gateway/errors.ts lists the codes. */
  totals(): Uint32Array {
    const slotNow = Math.floor(this.now() / this.bucketMs);
    const totals = new Uint32Array(CODES.length);
    for (let i = 0; i < this.size; i++) {
      if (this.#slots[i]! <= slotNow - this.size) continue;   // older than the window
      for (let k = 0; k < CODES.length; k++) totals[k]! += this.#counts[i * CODES.length + k]!;
    }
    return totals;
  }
}

/** Several processes' totals (cluster workers) summed, as the codes that occurred, the most frequent first. */
export function gatewayErrorCounts(totals: readonly ArrayLike<number>[]): GatewayErrorCount[] {
  const out: GatewayErrorCount[] = [];
  CODES.forEach((code, k) => {
    const count = totals.reduce((n, t) => n + (t[k] ?? 0), 0);
    if (count > 0) out.push({ code, status: ERRORS[code].status, count });
  });
  return out.sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
}
