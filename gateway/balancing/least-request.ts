import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer, PickContext } from './balancer.js';
import { slowStartFactor } from './slow-start.js';

/**
 * Fewest requests in flight relative to weight (and slow start). Scanning starts one place further each pick, so
 * ties (an idle pool) rotate instead of piling onto the first endpoint.
 */
export class LeastRequestBalancer implements Balancer {
  #start = 0;

  constructor(private readonly slowStartMs: number) {}

  pick(endpoints: readonly EndpointState[], ctx: PickContext): EndpointState | undefined {
    const n = endpoints.length;
    if (++this.#start >= n) this.#start = 0;
    let best: EndpointState | undefined;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const e = endpoints[(this.#start + k) % n] as EndpointState;
      if (!ctx.usable(e)) continue;
      const load = (e.inFlight + 1) / (e.weight * slowStartFactor(e, ctx.now, this.slowStartMs));
      if (load < bestLoad) { best = e; bestLoad = load; }
    }
    return best;
  }
}
