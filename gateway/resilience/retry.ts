import { handleWhen, retry, type IBackoff, type IBackoffFactory, type IRetryBackoffContext, type RetryPolicy } from 'cockatiel';
import type { RetryConfig } from '../config/gateway-config.js';
import { AttemptFailure } from './attempt-failure.js';
import type { RetryBudget } from './retry-budget.js';
import type { ServiceCall, UpstreamTry } from './service-call.js';

// Below this much time left before the deadline, a retry could not get an answer anyway.
const MIN_RETRY_WINDOW_MS = 5;

/**
 * RFC 9110 §9.2.2 idempotent methods are retried after a reset, a timeout, a malformed answer or a retryable status;
 * a request with an idempotency key is treated the same. Any request is retried when nothing was sent (connect failed).
 */
function mayRetryFailure(f: AttemptFailure, idempotent: boolean): boolean {
  if (f.kind === 'cancelled') return false;
  return f.nothingSent || idempotent;
}

function retryAfterMs(t: UpstreamTry): number {
  const value = t.retryAfter;
  if (value === undefined) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now());
}

/**
 * A service's retry policy (cockatiel), or null when retries are off (attempts: 0). It judges a try by its failure
 * (AttemptFailure) or its answer (UpstreamTry); both carry their request (`call`): whether it may be sent again
 * (body replayable, method idempotent, time left before the deadline, client still there) and the retry budget.
 * Backoff: full-jitter exponential (AWS), at least the upstream's Retry-After, never past the deadline.
 */
export function buildRetry(r: RetryConfig, budget: RetryBudget, random: () => number = Math.random): RetryPolicy | null {
  if (r.attempts === 0) return null;
  const statuses = new Set(r.statuses);

  // `free`: the failed try never reached an upstream (connection refused, connect timeout, open circuit), so
  // retrying it adds no upstream load and takes nothing from the budget, which exists against retry storms.
  function allowed(c: ServiceCall | undefined, now: number, free = false): boolean {
    if (c === undefined || c.settled || c.closed || !c.replayable || c.deadlineAt - now < MIN_RETRY_WINDOW_MS) return false;
    if (!free && !budget.tryAcquire(now)) { c.budgetExhausted = true; return false; }
    return true;
  }

  const backoff: IBackoffFactory<IRetryBackoffContext<unknown>> = { next: (ctx) => step(ctx) };
  function step(ctx: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    let duration = random() * Math.min(r.backoff.maxMs, r.backoff.initialMs * 2 ** (ctx.attempt - 1));
    let call: ServiceCall | undefined;
    if ('value' in ctx.result) {
      const t = ctx.result.value as UpstreamTry;
      duration = Math.max(duration, retryAfterMs(t));
      call = t.call;
    } else if (ctx.result.error instanceof AttemptFailure) {
      call = ctx.result.error.call;
    }
    if (call !== undefined) duration = Math.max(0, Math.min(duration, call.deadlineAt - Date.now() - MIN_RETRY_WINDOW_MS));
    return { duration, next: (next) => step(next) };
  }

  const policy = retry(
    handleWhen((err) => {
      if (!(err instanceof AttemptFailure)) return false;
      const c = err.call;
      return c !== undefined && mayRetryFailure(err, c.idempotent) && allowed(c, Date.now(), err.nothingSent);
    }).orWhenResult((value) => {
      const t = value as UpstreamTry;
      const c = t.call;
      if (!statuses.has(t.statusCode) || !c.idempotent) return false;
      // A Retry-After beyond the deadline means the answer is the answer.
      return retryAfterMs(t) < c.deadlineAt - Date.now() && allowed(c, Date.now());
    }),
    { maxAttempts: r.attempts, backoff },
  );
  // A retried answer is dropped: read it to the end so its connection goes back to the pool.
  policy.onRetry((e) => { if ('value' in e) (e.value as UpstreamTry).drop(); });
  return policy;
}
