import type { EndpointState } from '../upstream/endpoint-state.js';

/**
 * Slow start: an endpoint added `age` ms ago takes 10 % of its share at first and its full share after slowStartMs,
 * so a cold instance (JIT, caches, pools) is not flooded the moment discovery lists it.
 */
export function slowStartFactor(e: EndpointState, now: number, slowStartMs: number): number {
  if (slowStartMs <= 0) return 1;
  const age = now - e.addedAt;
  return age >= slowStartMs ? 1 : 0.1 + 0.9 * (age / slowStartMs);
}
