import { Counter, Gauge, type Registry } from 'prom-client';
import type { PolicyDecisions, PolicyEvents } from '../policies/policy.js';
import { boundedReason } from './label-values.js';

/** One policy's decisions since the start: what the dashboard shows (admin-views.ts), summed over workers. */
export interface PolicyTally {
  readonly policy: string;
  readonly kind: string;
  allowed: number;
  /** Refusals by reason. */
  readonly refused: Record<string, number>;
}

/**
 * What each policy decided: allowed, or refused and why. A route's chain takes its policies' counters once, when the
 * config is built (PolicyChain), so a decision is an increment on a labelled child, with no label lookup.
 * Label values are policy names and kinds from the config and fixed reason words from the kinds' code.
 */
export class PolicyMetrics implements PolicyEvents {
  readonly #allowed: Counter<'policy' | 'kind'>;
  readonly #refused: Counter<'policy' | 'kind' | 'reason'>;
  readonly #storeUp: Gauge;
  readonly #storeFailures: Counter;
  readonly #mirrored: Counter<'policy' | 'outcome'>;
  /** The same counts as plain numbers, readable at once (prom-client reads its counters asynchronously). */
  readonly #tallies = new Map<string, PolicyTally>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.#allowed = new Counter({ name: 'gantry_policy_allowed_total', help: 'Requests a policy let through (docs/policies.md), by policy and kind.', labelNames: ['policy', 'kind'], registers });
    this.#refused = new Counter({ name: 'gantry_policy_refused_total', help: 'Requests a policy refused (401, 403, 429, 503, 504), by policy, kind and reason.', labelNames: ['policy', 'kind', 'reason'], registers });
    this.#storeUp = new Gauge({ name: 'gantry_rate_limit_store_up', help: '1 while the rate-limit store (rateLimitStore.redis) answers, 0 while onStoreDown decides; absent without a store.', aggregator: 'min', registers });
    this.#mirrored = new Counter({ name: 'gantry_mirror_requests_total', help: 'Copies a mirror policy made of requests: sent, dropped (too many under way), failed, skipped (a body, no endpoint).', labelNames: ['policy', 'outcome'], registers });
    this.#storeFailures = new Counter({ name: 'gantry_rate_limit_store_failures_total', help: 'Requests whose rate limit could not use the store (down, timed out, or skipped while down): onStoreDown decided.', registers });
  }

  rateLimitStore(up: boolean): void {
    this.#storeUp.set(up ? 1 : 0);
  }

  mirrored(policy: string, outcome: string): void {
    this.#mirrored.labels(policy, outcome).inc();
  }

  rateLimitStoreFailed(): void {
    this.#storeFailures.inc();
  }

  decisions(policy: string, kind: string): PolicyDecisions {
    const allowed = this.#allowed.labels(policy, kind);
    const refused = new Map<string, Counter.Internal>();
    const key = `${policy}\n${kind}`;
    let tally = this.#tallies.get(key);
    if (tally === undefined) this.#tallies.set(key, tally = { policy, kind, allowed: 0, refused: {} });
    const counts = tally;
    return {
      allowed: () => { allowed.inc(); counts.allowed++; },
      refused: (reason) => {
        let child = refused.get(reason);
        const bounded = boundedReason(reason);
        if (child === undefined) refused.set(reason, child = this.#refused.labels(policy, kind, bounded));
        child.inc();
        counts.refused[bounded] = (counts.refused[bounded] ?? 0) + 1;
      },
    };
  }

  /** Every policy's decisions so far, copied (a config's policies and those of configs before it). */
  tallies(): PolicyTally[] {
    return [...this.#tallies.values()].map((t) => ({ policy: t.policy, kind: t.kind, allowed: t.allowed, refused: { ...t.refused } }));
  }
}
