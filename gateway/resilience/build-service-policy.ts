import {
  handleWhen, retry, type IBackoff, type IBackoffFactory, type IRetryBackoffContext,
  type RetryPolicy,
} from 'cockatiel';
import type { ServiceConfig } from '../config/gateway-config.js';
import { Bulkhead } from './bulkhead.js';
import { AttemptFailure, mayRetryFailure } from './is-retryable.js';
import { RetryBudget } from './retry-budget.js';

/** What the retry decision needs to know about the request behind a failure or an answer. */
export interface RetryCandidate {
  /** The answer went out already (deadline): stop. */
  readonly settled: boolean;
  /** The client went away: stop. */
  readonly closed: boolean;
  readonly replayable: boolean;
  readonly idempotent: boolean;
  readonly deadlineAt: number;
  budgetExhausted: boolean;
}

/** Links an attempt's failure or answer to its request, for the policy's predicates (built once per service). */
/** The head of an upstream answer as the retry policy sees it (gateway/proxy/upstream-attempt.ts holds it). */
export interface UpstreamResponse {
  readonly statusCode: number;
  /** The upstream's Retry-After, for the backoff. */
  readonly retryAfter: string | undefined;
  /** Throws the answer away (it is retried), keeping its connection. */
  drop(): void;
}

export const CANDIDATE = Symbol('gantry.retry-candidate');
type Carrier = { [CANDIDATE]?: RetryCandidate };

// Below this much time left before the deadline, a retry could not get an answer anyway.
const MIN_RETRY_WINDOW_MS = 5;

/**
 * The resilience of one service, composed in one place and built once per config:
 *
 *   bulkhead( retry( select endpoint → breaker(endpoint)( attempt with per-try timeout ) ) )   + route deadline
 *
 * The bulkhead is outermost so a request waiting between retries keeps its slot (the upstream's load does not drop
 * while we back off). Retry wraps the endpoint choice so each retry can go elsewhere; the breaker is per endpoint
 * (endpoint-health.ts) so one bad instance opens alone. The per-try timeout and the route deadline are timers in
 * forward-request.ts: the deadline spans the bulkhead queue, the retries and their backoff.
 */
export interface ServicePolicy {
  readonly bulkhead: Bulkhead;
  /** null when retries are off (attempts: 0). */
  readonly retry: RetryPolicy | null;
  readonly budget: RetryBudget;
  readonly retryStatuses: ReadonlySet<number>;
  readonly retryMethods: ReadonlySet<string>;
  readonly bufferBodyBytes: number;
  readonly idempotencyKeyHeader: string | null;
}

function retryAfterMs(res: UpstreamResponse): number {
  const value = res.retryAfter;
  if (value === undefined) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now());
}

export function buildServicePolicy(cfg: ServiceConfig, random: () => number = Math.random): ServicePolicy {
  const r = cfg.retry;
  const budget = new RetryBudget(r.budget.ratio, r.budget.minPerSecond, r.budget.windowMs);
  const retryStatuses = new Set(r.statuses);

  // `free`: the failed try never reached an upstream (connection refused, connect timeout, open circuit), so
  // retrying it adds no upstream load and takes nothing from the budget, which exists against retry storms.
  function allowed(c: RetryCandidate | undefined, now: number, free = false): boolean {
    if (c === undefined || c.settled || c.closed || !c.replayable || c.deadlineAt - now < MIN_RETRY_WINDOW_MS) return false;
    if (!free && !budget.tryAcquire(now)) { c.budgetExhausted = true; return false; }
    return true;
  }

  // Full-jitter exponential backoff (AWS), at least the upstream's Retry-After, never past the deadline.
  const backoff: IBackoffFactory<IRetryBackoffContext<unknown>> = { next: (ctx) => step(ctx) };
  function step(ctx: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    let duration = random() * Math.min(r.backoff.maxMs, r.backoff.initialMs * 2 ** (ctx.attempt - 1));
    const carrier = ('value' in ctx.result ? ctx.result.value : ctx.result.error) as Carrier;
    if ('value' in ctx.result) duration = Math.max(duration, retryAfterMs(carrier as UpstreamResponse));
    const c = carrier[CANDIDATE];
    if (c) duration = Math.max(0, Math.min(duration, c.deadlineAt - Date.now() - MIN_RETRY_WINDOW_MS));
    return { duration, next: (next) => step(next) };
  }

  const retryPolicy = r.attempts === 0 ? null : retry(
    handleWhen((err) => {
      if (!(err instanceof AttemptFailure)) return false;
      const c = (err as Carrier)[CANDIDATE];
      return c !== undefined && mayRetryFailure(err, c.idempotent) && allowed(c, Date.now(), err.nothingSent);
    }).orWhenResult((value) => {
      const res = value as UpstreamResponse & Carrier;
      const c = res[CANDIDATE];
      if (!retryStatuses.has(res.statusCode) || !c?.idempotent) return false;
      // A Retry-After beyond the deadline means the answer is the answer.
      return retryAfterMs(res) < c.deadlineAt - Date.now() && allowed(c, Date.now());
    }),
    { maxAttempts: r.attempts, backoff },
  );
  // A retried answer is dropped: read it to the end so its connection goes back to the pool.
  retryPolicy?.onRetry((e) => { if ('value' in e) (e.value as UpstreamResponse).drop(); });

  return {
    bulkhead: new Bulkhead(cfg.bulkhead.maxConcurrent, cfg.bulkhead.maxQueue),
    retry: retryPolicy,
    budget,
    retryStatuses,
    retryMethods: new Set(r.methods),
    bufferBodyBytes: r.bufferBodyBytes,
    idempotencyKeyHeader: r.idempotencyKeyHeader?.toLowerCase() ?? null,
  };
}
