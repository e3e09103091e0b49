import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer } from './balancer.js';

/**
 * Power of two random choices (Mitzenmacher): the less loaded of two random endpoints. Nearly as good as a full
 * least-request scan, O(1), and it avoids the herd a global minimum causes when many picks see the same state.
 */
export class PowerOfTwoChoicesBalancer implements Balancer {
  constructor(private readonly random: () => number) {}

  pick(endpoints: readonly EndpointState[]): EndpointState {
    const n = endpoints.length;
    if (n === 1) return endpoints[0] as EndpointState;
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = endpoints[i] as EndpointState;
    const b = endpoints[j] as EndpointState;
    return b.inFlight / b.weight < a.inFlight / a.weight ? b : a;
  }
}
