import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer } from './balancer.js';

/** Random in proportion to weight (uniform when all weights are equal). */
export class RandomBalancer implements Balancer {
  #list: readonly EndpointState[] = [];
  #cumulative: number[] = [];

  constructor(private readonly random: () => number) {}

  pick(endpoints: readonly EndpointState[]): EndpointState {
    if (endpoints !== this.#list) {
      this.#list = endpoints;
      let sum = 0;
      this.#cumulative = endpoints.map((e) => (sum += e.weight));
    }
    const total = this.#cumulative[this.#cumulative.length - 1] as number;
    const x = this.random() * total;
    let lo = 0;
    let hi = endpoints.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#cumulative[mid] as number) > x) hi = mid; else lo = mid + 1;
    }
    return endpoints[lo] as EndpointState;
  }
}
