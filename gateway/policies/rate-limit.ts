import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { GcraDecision, GcraLimit } from './gcra.js';
import type { Policy, PolicyBuildContext, PolicyExchange, PolicyKind, PolicyLoadContext, Refusal, Verdict } from './policy.js';
import type { RateLimiter } from './rate-limiter.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';

export interface RateLimitOptions {
  readonly requests: number;
  readonly perMs: number;
  readonly burst: number;
  /** `client-ip`, `consumer`, `route` or `header:<lower-case name>`. */
  readonly key: string;
}

const UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
// A long key value (a header) is kept as its hash: bounded memory per bucket, and no client text in Redis keys.
const MAX_KEY_CHARS = 128;

function load(raw: unknown, ctx: PolicyLoadContext): RateLimitOptions {
  const o = raw as { requests: number; per: string | number; burst?: number; key: string };
  const m = typeof o.per === 'number' ? null : /^(\d+)(ms|s|m|h)$/.exec(o.per);
  const perMs = typeof o.per === 'number' ? o.per : m ? Number(m[1]) * (UNITS_MS[m[2] as string] as number) : 0;
  if (perMs <= 0) ctx.report(['per'], `"${o.per}" is not a duration such as 500ms, 10s, 1m or 1h`);
  const key = o.key.startsWith('header:') ? `header:${o.key.slice(7).toLowerCase()}` : o.key;
  return { requests: o.requests, perMs, burst: o.burst ?? o.requests, key };
}

function keyReader(key: string, clientAddress: (req: IncomingMessage) => string): (ex: PolicyExchange) => string {
  if (key === 'route') return () => '';
  if (key === 'client-ip') return (ex) => clientAddress(ex.req);
  // Before any authentication policy there is no consumer: such requests share buckets by client address.
  if (key === 'consumer') return (ex) => (ex.consumer === '' ? `ip:${clientAddress(ex.req)}` : `c:${ex.consumer}`);
  const header = key.slice(7);
  return (ex) => {
    const v = ex.req.headers[header];
    const text = v === undefined ? '' : Array.isArray(v) ? v.join(',') : v;
    return text.length > MAX_KEY_CHARS ? createHash('sha256').update(text).digest('hex') : text;
  };
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | null)?.then === 'function';
}

async function create(name: string, options: RateLimitOptions, ctx: PolicyBuildContext): Promise<Policy> {
  const store = ctx.rateLimitStore;
  const { runtime } = ctx;
  // One Redis client per URL and timeout, shared by the policies of every config that names them, closed when the
  // last of those configs retires (a reload that changes the URL or removes the store closes the old one).
  const client = store === null ? null
    : runtime.share(`redis ${store.redis.url} ${store.redis.timeoutMs}`, () => RedisRateLimiter.create(store.redis.url, store.redis.timeoutMs, runtime.log, runtime.events),
      async (limiter) => (await limiter).close());
  const limiter: RateLimiter = client === null ? runtime.localLimiter : await client.value;
  const limit: GcraLimit = { intervalMs: options.perMs / options.requests, burst: options.burst };
  const policyHeader = `"${name}";q=${options.requests};w=${Math.ceil(options.perMs / 1000)}`;
  const storeDown: Verdict = store?.onStoreDown === 'deny' ? { code: 'GW_ERR_RATE_LIMIT_UNAVAILABLE', reason: 'store-down', headers: ['retry-after', '1'] } : undefined;
  const readKey = keyReader(options.key, ctx.clientAddress);

  function verdict(ex: PolicyExchange, d: GcraDecision | null): Verdict {
    if (d === null) {
      runtime.events.rateLimitStoreFailed();
      return storeDown;
    }
    if (d.allowed) {
      // Every answer of the route says where the client stands, so it can pace itself before it is refused.
      (ex.answerHeaders ??= []).push('ratelimit-policy', policyHeader, 'ratelimit', `"${name}";r=${d.remaining};t=${Math.max(1, Math.ceil(d.resetMs / 1000))}`);
      return undefined;
    }
    const refusal: Refusal = {
      code: 'GW_ERR_RATE_LIMITED', reason: 'limit',
      headers: [
        'retry-after', String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))),
        'ratelimit-policy', policyHeader,
        'ratelimit', `"${name}";r=${d.remaining};t=${Math.max(1, Math.ceil(d.resetMs / 1000))}`,
      ],
    };
    return refusal;
  }

  return {
    close: () => client?.release(),
    forRoute(route) {
      // Buckets are per policy, route and key: the same client on two routes of one policy has two buckets.
      const prefix = `${name}\n${route}\n`;
      return {
        policy: name,
        kind: 'rateLimit',
        apply(ex: PolicyExchange): Verdict | Promise<Verdict> {
          const d = limiter.take(prefix + readKey(ex), limit);
          return isPromise(d) ? d.then((d) => verdict(ex, d)) : verdict(ex, d);
        },
      };
    },
  };
}

/**
 * `rateLimit: { requests, per, burst, key }`: GCRA (gcra.ts) per route × key; the IETF RateLimit-Policy and
 * RateLimit fields on every answer it decided, and 429 with Retry-After when it refuses. Buckets live in the gateway (the primary with --workers) or, with
 * `rateLimitStore:`, in Redis.
 */
export const rateLimit: PolicyKind<RateLimitOptions> = {
  kind: 'rateLimit',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['requests', 'per'],
    properties: {
      requests: { type: 'integer', minimum: 1, description: 'Requests allowed per `per` at the steady rate.' },
      per: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'integer', minimum: 1 }], description: 'A duration: 500ms, 10s, 1m, 1h, or milliseconds.' },
      burst: { type: 'integer', minimum: 1, description: 'Requests allowed at once from a full bucket; default `requests`.' },
      key: { type: 'string', pattern: '^(client-ip|consumer|route|header:[A-Za-z0-9-]+)$', default: 'client-ip', description: 'What a bucket is per, within the route.' },
    },
  },
  load,
  create,
};
