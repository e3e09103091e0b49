import type { GcraDecision, GcraLimit } from '../policies/gcra.js';
import { GcraTable } from '../policies/gcra.js';
import type { RateLimiter } from '../policies/rate-limiter.js';
import type { ToPrimary, ToWorker } from './messages.js';
import type { PrimaryChannel } from './worker-scaling.js';

/** One ask: bucket key, interval (ms), burst. */
export type RateLimitAsk = readonly [key: string, intervalMs: number, burst: number];
/** Per ask, in order: allowed (0/1), remaining, resetMs, retryAfterMs. */
const FIELDS = 4;
/** A primary that does not answer in this long is taken as a store that is down (the request is let through). */
const ANSWER_TIMEOUT_MS = 1_000;

/**
 * A cluster worker's rate limits: the buckets are the primary's (one GcraTable for the whole gateway), so a limit is
 * the gateway's and not N times it. The asks of one event-loop turn go in one message and come back in one answer:
 * each limited request waits one IPC round trip. The trade-off, against giving each worker a share of every limit:
 * shares need no round trip but are exact only when traffic spreads evenly over the workers (SO_REUSEPORT spreads
 * connections, not requests; a few keep-alive clients can all land on one worker), and a key seen by one worker
 * would get 1/N of its limit. Exact and simple won.
 */
export class ClusterRateLimiter implements RateLimiter {
  readonly #pending = new Map<number, (decisions: readonly number[] | null) => void>();
  #batch: { asks: RateLimitAsk[]; settle: ((d: GcraDecision | null) => void)[] } | null = null;
  #ids = 0;

  constructor(private readonly channel: PrimaryChannel) {
    channel.listen((m) => {
      if (m.type !== 'rate-limit-answer') return;
      this.#pending.get(m.id)?.(m.decisions);
    });
  }

  take(key: string, limit: GcraLimit): Promise<GcraDecision | null> {
    if (this.#batch === null) {
      this.#batch = { asks: [], settle: [] };
      setImmediate(() => this.#send());
    }
    const batch = this.#batch;
    batch.asks.push([key, limit.intervalMs, limit.burst]);
    return new Promise((resolve) => batch.settle.push(resolve));
  }

  #send(): void {
    const batch = this.#batch;
    this.#batch = null;
    if (batch === null) return;
    const id = ++this.#ids;
    const timer = setTimeout(() => this.#pending.get(id)?.(null), ANSWER_TIMEOUT_MS);
    this.#pending.set(id, (decisions) => {
      clearTimeout(timer);
      this.#pending.delete(id);
      batch.settle.forEach((settle, i) => settle(decisions === null ? null : {
        allowed: decisions[i * FIELDS] === 1, remaining: decisions[i * FIELDS + 1] as number,
        resetMs: decisions[i * FIELDS + 2] as number, retryAfterMs: decisions[i * FIELDS + 3] as number,
      }));
    });
    this.channel.send({ type: 'rate-limit', id, asks: batch.asks } satisfies ToPrimary);
  }
}

/** The primary's side: every worker's asks against one table. */
export class PrimaryRateLimits {
  readonly #table = new GcraTable();

  answer(id: number, asks: readonly RateLimitAsk[]): ToWorker {
    const decisions: number[] = [];
    for (const [key, intervalMs, burst] of asks) {
      const d = this.#table.take(key, { intervalMs, burst });
      decisions.push(d.allowed ? 1 : 0, d.remaining, d.resetMs, d.retryAfterMs);
    }
    return { type: 'rate-limit-answer', id, decisions };
  }
}
