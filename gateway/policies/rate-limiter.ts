import type { GcraDecision, GcraLimit } from './gcra.js';

/**
 * Where a rate limit's buckets are kept: in the gateway (GcraTable), with --workers in the primary
 * (cluster/cluster-rate-limiter.ts), or in Redis (redis-rate-limiter.ts). `take` counts one request against bucket
 * `key`; null means the store could not answer (down, or past its timeout) and `onStoreDown` decides. A promise it
 * returns never rejects and settles within the store's timeout.
 */
export interface RateLimiter {
  take(key: string, limit: GcraLimit): GcraDecision | null | Promise<GcraDecision | null>;
}

/** `rateLimitStore:` of the config: where rateLimit policies keep their buckets when not in the gateway. */
export interface RateLimitStoreConfig {
  readonly redis: { readonly url: string; readonly timeoutMs: number };
  /** What a request gets while the store does not answer: forwarded unlimited, or 503. */
  readonly onStoreDown: 'allow' | 'deny';
}
