/**
 * A route's per-try timeout. An explicit `tryTimeoutMs` of the service wins. Otherwise, with retries on, a third of
 * the route's deadline: under the 15 s default a try gets 5 s, so after a silent endpoint the retry still has a whole
 * try and its backoff before the deadline; a third rather than a fixed 5 s, so a route whose deadline was raised for
 * slow answers keeps tries in proportion, and a short deadline still fits a retry. With retries off a try is the
 * whole deadline: a shorter one would only answer 504 sooner. docs/resilience.md, "Timeouts".
 */
export function tryTimeoutMs(explicitMs: number | undefined, deadlineMs: number, retryAttempts: number): number {
  if (explicitMs !== undefined) return explicitMs;
  if (retryAttempts === 0) return deadlineMs;
  return Math.max(1, Math.floor(deadlineMs / 3));
}
