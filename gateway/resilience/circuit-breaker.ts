import {
  BrokenCircuitError, circuitBreaker, CircuitState, ConsecutiveBreaker, handleWhen, SamplingBreaker,
  type CircuitBreakerPolicy, type IBackoff, type IBackoffFactory, type IBreaker,
} from 'cockatiel';
import type { BreakerConfig } from '../config/gateway-config.js';
import { AttemptFailure, failure } from './attempt-failure.js';
import type { ServiceCall, UpstreamTry } from './service-call.js';

function ignore(): void {}

/** The breaker's states by cockatiel's CircuitState value (Closed 0, Open 1, HalfOpen 2, Isolated 3): labels and views. */
export const BREAKER_STATES = ['closed', 'open', 'half-open', 'isolated'] as const;
export type BreakerState = typeof BREAKER_STATES[number];

/**
 * What opens an endpoint's circuit: the endpoint could not be reached, did not answer, or answered something that is
 * not HTTP. A 5xx answer is not a breaker failure (the endpoint is up and talking); outlier detection counts those.
 */
function isBreakerFailure(err: unknown): boolean {
  return err instanceof AttemptFailure && err.kind !== 'broken-circuit' && err.kind !== 'cancelled';
}

export interface EndpointBreaker {
  readonly policy: CircuitBreakerPolicy;
  /** The policy's counter (cockatiel's IBreaker), told directly about tries made while the circuit is closed. */
  readonly counter: IBreaker;
}

/**
 * One endpoint's cockatiel circuit breaker. Once open, `probeAt(at)` is told when the probe is due (the selector
 * lets exactly one request through then); each failed probe doubles the wait, up to maxHalfOpenAfterMs.
 * `initialState` (cockatiel's toJSON) carries the open/closed state over when the settings change.
 */
export function buildBreaker(cfg: BreakerConfig, initialState: unknown, probeAt: (at: number) => void): EndpointBreaker {
  const halfOpenAfter: IBackoffFactory<unknown> = { next: () => backoff(1) };
  function backoff(attempt: number): IBackoff<unknown> {
    const duration = Math.min(cfg.halfOpenAfterMs * 2 ** (attempt - 1), cfg.maxHalfOpenAfterMs);
    probeAt(Date.now() + duration);   // cockatiel opens the circuit right after asking for this
    return { duration, next: () => backoff(attempt + 1) };
  }
  const counter = cfg.failureRatio
    ? new SamplingBreaker({ threshold: cfg.failureRatio.threshold, duration: cfg.failureRatio.windowMs, minimumRps: cfg.failureRatio.minimumRps })
    : new ConsecutiveBreaker(cfg.consecutiveFailures);
  return { policy: circuitBreaker(handleWhen(isBreakerFailure), { halfOpenAfter, breaker: counter, initialState }), counter };
}

/**
 * A closed circuit lets every call through, so a try is made outside the breaker's execute and its outcome told to
 * the breaker afterwards (closedSuccess, closedFailure): execute's closed state does no more than that, in two more
 * async frames per request (about 3k fewer instructions per request; npm run bench:instructions -- --requests 6000).
 */
export function isClosed(b: EndpointBreaker | null): boolean {
  return b === null || b.policy.state === CircuitState.Closed;
}

export function closedSuccess(b: EndpointBreaker | null): void {
  b?.counter.success(CircuitState.Closed);
}

/** A breaker failure goes through the breaker itself, which opens the circuit when it is one too many. */
export function closedFailure(b: EndpointBreaker | null, f: AttemptFailure): void {
  if (b === null || b.policy.state !== CircuitState.Closed || !isBreakerFailure(f)) return;
  b.policy.execute(() => { throw f; }).catch(ignore);
}

/**
 * A try through an open or half-open circuit: the probe goes through, anything else is refused with a
 * `broken-circuit` failure (nothing was sent, so the retry policy may go to another endpoint at once).
 */
export function throughBreaker(b: EndpointBreaker, call: ServiceCall, makeTry: () => Promise<UpstreamTry>): Promise<UpstreamTry> {
  return b.policy.execute(makeTry).catch((err: unknown) => {
    if (!(err instanceof BrokenCircuitError)) throw err;
    const f = failure('broken-circuit');
    f.call = call;
    call.retryReason = f.kind;
    throw f;
  });
}
