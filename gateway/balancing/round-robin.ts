import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer, PickContext } from './balancer.js';

/** Each usable endpoint in turn; weights are ignored (use weighted-round-robin for them). */
export class RoundRobinBalancer implements Balancer {
  #next = 0;

  pick(endpoints: readonly EndpointState[], ctx: PickContext): EndpointState | undefined {
    const n = endpoints.length;
    for (let k = 0; k < n; k++) {
      if (this.#next >= n) this.#next = 0;
      const e = endpoints[this.#next++] as EndpointState;
      if (ctx.usable(e)) return e;
    }
    return undefined;
  }
}
