import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer, PickContext } from './balancer.js';

/**
 * nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a rather than a a a a a b c, so a heavy
 * endpoint never receives a burst. O(n) per pick; the state is rebuilt when the pool's list changes. Unusable
 * endpoints sit out the round (their current weight is left as it is).
 */
export class WeightedRoundRobinBalancer implements Balancer {
  #list: readonly EndpointState[] = [];
  #current: number[] = [];

  pick(endpoints: readonly EndpointState[], ctx: PickContext): EndpointState | undefined {
    if (endpoints !== this.#list) {
      this.#list = endpoints;
      this.#current = endpoints.map(() => 0);
    }
    let best = -1;
    let total = 0;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i] as EndpointState;
      if (!ctx.usable(e)) continue;
      total += e.weight;
      const c = (this.#current[i] as number) + e.weight;
      this.#current[i] = c;
      if (best < 0 || c > (this.#current[best] as number)) best = i;
    }
    if (best < 0) return undefined;
    this.#current[best] = (this.#current[best] as number) - total;
    return endpoints[best] as EndpointState;
  }
}
