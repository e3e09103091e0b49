import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer } from './balancer.js';

/**
 * nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a rather than a a a a a b c, so a heavy
 * endpoint never receives a burst. O(n) per pick; the state is rebuilt when the pool's list changes.
 */
export class WeightedRoundRobinBalancer implements Balancer {
  #list: readonly EndpointState[] = [];
  #current: number[] = [];
  #total = 0;

  pick(endpoints: readonly EndpointState[]): EndpointState {
    if (endpoints !== this.#list) {
      this.#list = endpoints;
      this.#current = endpoints.map(() => 0);
      this.#total = endpoints.reduce((sum, e) => sum + e.weight, 0);
    }
    let best = 0;
    for (let i = 0; i < endpoints.length; i++) {
      const c = (this.#current[i] as number) + (endpoints[i] as EndpointState).weight;
      this.#current[i] = c;
      if (c > (this.#current[best] as number)) best = i;
    }
    this.#current[best] = (this.#current[best] as number) - this.#total;
    return endpoints[best] as EndpointState;
  }
}
