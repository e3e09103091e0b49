import type { BalancerName } from '../config/gateway-config.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { LeastRequestBalancer } from './least-request.js';
import { PowerOfTwoChoicesBalancer } from './power-of-two-choices.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

/** Picks one endpoint from the pool's current list. `endpoints` is never empty when pick is called. */
export interface Balancer {
  pick(endpoints: readonly EndpointState[]): EndpointState;
}

/** Randomness is injected so tests can replay exact sequences. */
export function createBalancer(name: BalancerName, random: () => number = Math.random): Balancer {
  switch (name) {
    case 'round-robin': return new RoundRobinBalancer();
    case 'weighted-round-robin': return new WeightedRoundRobinBalancer();
    case 'random': return new RandomBalancer(random);
    case 'least-request': return new LeastRequestBalancer();
    case 'p2c': return new PowerOfTwoChoicesBalancer(random);
  }
}
