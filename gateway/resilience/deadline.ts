import type { ServiceCall } from './service-call.js';
import { TimerLists } from './timer-list.js';

/**
 * The route deadline: one timer per request from the moment an endpoint is ready (after any scale-from-zero hold),
 * spanning the bulkhead queue, every try and the backoff between them. When it runs out the client gets 504
 * GW_ERR_UPSTREAM_TIMEOUT and the try under way is aborted. Timers are TimerLists (timer-list.ts): one list per duration.
 */
export class Deadlines {
  readonly #timers: TimerLists<ServiceCall>;

  constructor(expired: (call: ServiceCall) => void) {
    this.#timers = new TimerLists((call) => {
      call.deadlineTimer = undefined;
      if (!call.settled) expired(call);
    });
  }

  start(call: ServiceCall, timeoutMs: number, now: number): void {
    call.deadlineAt = now + timeoutMs;
    call.deadlineTimer = this.#timers.start(timeoutMs, call);
  }
}

/** A try's own timeout: the route deadline covers the try unless the per-try timeout is shorter (0: none of its own). */
export function tryTimeoutMs(call: ServiceCall, perTryMs: number, now: number): number {
  return perTryMs < call.deadlineAt - now ? perTryMs : 0;
}
