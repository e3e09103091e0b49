import type { ErrorCode } from '../errors.js';

/** How one attempt failed before a response head arrived. `cancelled`: the gateway stopped it (client gone, body too large). */
export type AttemptFailureKind = 'connect' | 'connect-timeout' | 'reset' | 'timeout' | 'bad-response' | 'broken-circuit' | 'cancelled';

/** An attempt's failure, carrying what the retry decision needs. */
export class AttemptFailure extends Error {
  constructor(
    readonly kind: AttemptFailureKind,
    readonly code: ErrorCode,
    /** True when no byte of the request reached the upstream: safe to retry for any method. */
    readonly nothingSent: boolean,
    options: { cause?: unknown } = {},
  ) {
    super(`upstream attempt failed: ${kind}`, options);
    this.name = 'AttemptFailure';
  }
}

export function isAttemptFailure(err: unknown): err is AttemptFailure {
  return err instanceof AttemptFailure;
}

/**
 * What opens an endpoint's circuit: the endpoint could not be reached, did not answer, or answered something that is
 * not HTTP. A 5xx answer is not a breaker failure (the endpoint is up and talking); outlier detection counts those.
 */
export function isBreakerFailure(err: unknown): boolean {
  return err instanceof AttemptFailure && err.kind !== 'broken-circuit' && err.kind !== 'cancelled';
}

/**
 * RFC 9110 §9.2.2 idempotent methods are retried after a reset, a timeout, a malformed answer or a retryable status;
 * a request with an idempotency key is treated the same. Any request is retried when nothing was sent (connect failed).
 */
export function mayRetryFailure(f: AttemptFailure, idempotent: boolean): boolean {
  if (f.kind === 'cancelled') return false;
  return f.nothingSent || idempotent;
}
