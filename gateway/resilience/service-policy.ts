import type { RetryPolicy } from 'cockatiel';
import type { ServiceConfig } from '../config/gateway-config.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';
import { Bulkhead } from './bulkhead.js';
import type { EndpointSelector } from './endpoint-selector.js';
import { buildRetry } from './retry.js';
import { RetryBudget } from './retry-budget.js';

/** A service as the request path uses it, built once per config (gateway/runtime/build-snapshot.ts). */
export interface ServiceRuntime {
  readonly config: ServiceConfig;
  readonly pool: UpstreamPool;
  readonly selector: EndpointSelector;
  readonly policy: ServicePolicy;
}

/** The parts of a service's resilience that hold state or cost work to build: made once per config, used per request. */
export interface ServicePolicy {
  readonly bulkhead: Bulkhead;
  /** null when retries are off (attempts: 0). */
  readonly retry: RetryPolicy | null;
  readonly budget: RetryBudget;
  readonly retryMethods: ReadonlySet<string>;
  readonly bufferBodyBytes: number;
  readonly idempotencyKeyHeader: string | null;
}

export function buildServicePolicy(cfg: ServiceConfig, random: () => number = Math.random): ServicePolicy {
  const r = cfg.retry;
  const budget = new RetryBudget(r.budget.ratio, r.budget.minPerSecond, r.budget.windowMs);
  return {
    bulkhead: new Bulkhead(cfg.bulkhead.maxConcurrent, cfg.bulkhead.maxQueue),
    retry: buildRetry(r, budget, random),
    budget,
    retryMethods: new Set(r.methods),
    bufferBodyBytes: r.bufferBodyBytes,
    idempotencyKeyHeader: r.idempotencyKeyHeader?.toLowerCase() ?? null,
  };
}
