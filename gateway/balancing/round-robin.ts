import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer } from './balancer.js';

/** Each endpoint in turn; weights are ignored (use weighted-round-robin for them). */
export class RoundRobinBalancer implements Balancer {
  #next = 0;

  pick(endpoints: readonly EndpointState[]): EndpointState {
    if (this.#next >= endpoints.length) this.#next = 0;
    return endpoints[this.#next++] as EndpointState;
  }
}
