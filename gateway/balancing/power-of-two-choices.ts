import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Balancer, PickContext } from './balancer.js';
import { slowStartFactor } from './slow-start.js';

/**
 * Power of two random choices over peak-EWMA cost, as Linkerd balances: of two random usable endpoints, the one
 * with the lower `latency estimate × (in flight + 1) ÷ weight` wins. Latency-aware, O(1), and free of the herd a
 * global minimum causes. Failures count as slow answers (peak-ewma.ts), so failing fast never attracts traffic.
 */
export class PowerOfTwoChoicesBalancer implements Balancer {
  constructor(private readonly random: () => number, private readonly slowStartMs: number) {}

  #cost(e: EndpointState, now: number): number {
    return (e.latency.estimate(now) + 1) * (e.inFlight + 1) / (e.weight * slowStartFactor(e, now, this.slowStartMs));
  }

  pick(endpoints: readonly EndpointState[], ctx: PickContext): EndpointState | undefined {
    const n = endpoints.length;
    if (n === 0) return undefined;
    const i = Math.floor(this.random() * n);
    const a = endpoints[i] as EndpointState;
    if (n > 1) {
      let j = Math.floor(this.random() * (n - 1));
      if (j >= i) j++;
      const b = endpoints[j] as EndpointState;
      const ua = ctx.usable(a);
      const ub = ctx.usable(b);
      if (ua && ub) return this.#cost(b, ctx.now) < this.#cost(a, ctx.now) ? b : a;
      if (ua) return a;
      if (ub) return b;
    } else if (ctx.usable(a)) {
      return a;
    }
    // Both draws unusable: fall back to the cheapest usable endpoint (rare: most of the pool is out).
    let best: EndpointState | undefined;
    let bestCost = Infinity;
    for (const e of endpoints) {
      if (!ctx.usable(e)) continue;
      const c = this.#cost(e, ctx.now);
      if (c < bestCost) { best = e; bestCost = c; }
    }
    return best;
  }
}
