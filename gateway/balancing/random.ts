import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer, PickContext } from './balancer.js';

/** Random in proportion to weight (uniform when all weights are equal), among usable endpoints. */
export class RandomBalancer implements Balancer {
  #list: readonly EndpointState[] = [];
  #cumulative: number[] = [];

  constructor(private readonly random: () => number) {}

  pick(endpoints: readonly EndpointState[], ctx: PickContext): EndpointState | undefined {
    if (endpoints !== this.#list) {
      this.#list = endpoints;
      let sum = 0;
      this.#cumulative = endpoints.map((e) => (sum += e.weight));
    }
    const n = endpoints.length;
    if (n === 0) return undefined;
    const total = this.#cumulative[n - 1] as number;
    const x = this.random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#cumulative[mid] as number) > x) hi = mid; else lo = mid + 1;
    }
    // The drawn endpoint, or the next usable one after it: random start, so the load stays spread.
    for (let k = 0; k < n; k++) {
      const e = endpoints[(lo + k) % n] as EndpointState;
      if (ctx.usable(e)) return e;
    }
    return undefined;
  }
}
