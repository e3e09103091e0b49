import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer } from './balancer.js';

/**
 * Fewest requests in flight relative to weight. Scanning starts one place further each pick, so ties (an idle pool)
 * rotate instead of piling onto the first endpoint.
 */
export class LeastRequestBalancer implements Balancer {
  #start = 0;

  pick(endpoints: readonly EndpointState[]): EndpointState {
    const n = endpoints.length;
    if (++this.#start >= n) this.#start = 0;
    let best = endpoints[this.#start] as EndpointState;
    let bestLoad = best.inFlight / best.weight;
    for (let k = 1; k < n; k++) {
      const e = endpoints[(this.#start + k) % n] as EndpointState;
      const load = e.inFlight / e.weight;
      if (load < bestLoad) { best = e; bestLoad = load; }
    }
    return best;
  }
}
