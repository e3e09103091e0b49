import type { BalancerName } from '../config/gateway-config.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { ConsistentHashBalancer } from './consistent-hash.js';
import { LeastRequestBalancer } from './least-request.js';
import { PowerOfTwoChoicesBalancer } from './power-of-two-choices.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

/** What one pick may use besides the list: which endpoints may take this request, a hash key, the time. */
export interface PickContext {
  /** False for endpoints that are ejected, failing health checks, open-circuited, or already tried. */
  usable(e: EndpointState): boolean;
  /** consistent-hash: the request's key (header, cookie or client IP); undefined when the request has none. */
  readonly hashKey: string | undefined;
  readonly now: number;
}

/** Picks one endpoint from the pool's current list, or undefined when none is usable. Never allocates per pick. */
export interface Balancer {
  pick(endpoints: readonly EndpointState[], ctx: PickContext): EndpointState | undefined;
}

export interface BalancerOptions {
  readonly random?: () => number;
  readonly slowStartMs?: number;
}

/** Randomness is injected so tests can replay exact sequences. */
export function createBalancer(name: BalancerName, options: BalancerOptions = {}): Balancer {
  const random = options.random ?? Math.random;
  const slowStartMs = options.slowStartMs ?? 0;
  switch (name) {
    case 'round-robin': return new RoundRobinBalancer();
    case 'weighted-round-robin': return new WeightedRoundRobinBalancer();
    case 'random': return new RandomBalancer(random);
    case 'least-request': return new LeastRequestBalancer(slowStartMs);
    case 'p2c': return new PowerOfTwoChoicesBalancer(random, slowStartMs);
    case 'consistent-hash': return new ConsistentHashBalancer(random);
  }
}
