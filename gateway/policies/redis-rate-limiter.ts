import { once } from 'node:events';
import { setTimeout } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { GcraDecision, GcraLimit } from './gcra.js';
import type { PolicyEvents } from './policy.js';
import type { RateLimiter } from './rate-limiter.js';

/**
 * GCRA in one atomic script (gcra.ts has the same steps): `TAT:interval` in microseconds under KEYS[1], Redis's own clock
 * (TIME) so gateways whose clocks differ still share one timeline; the key expires when the bucket is full again.
 * Returns allowed (0/1), remaining, reset and retry-after (µs).
 */
const GCRA_SCRIPT = `
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local storedTat, storedInterval = string.match(stored, '^(%d+):(%d+)$')
  tat = tonumber(storedTat)
  storedInterval = tonumber(storedInterval)
  if tat > now and storedInterval ~= interval then tat = now + (tat - now) * interval / storedInterval end
end
if tat < now then tat = now end
local allowAt = tat + interval - burst * interval
if now < allowAt then return {0, 0, tat - now, allowAt - now} end
local nextTat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f:%.0f', nextTat, interval), 'PX', math.ceil((nextTat - now) / 1000) + 1)
return {1, math.floor((now + burst * interval - nextTat) / interval), nextTat - now, 0}
`;

/** After a failure, how long requests skip the store (onStoreDown answers at once) before one tries it again. */
const BREAKER_OPEN_MS = 1_000;

type GcraClient = Redis & { gcra(key: string, intervalUs: number, burst: number): Promise<[number, number, number, number]> };

/**
 * Buckets in Redis, exact across gateways and workers. No request waits on a dead store: commands are never queued
 * while disconnected (they fail at once), each is bounded by `timeoutMs`, and after a failure the store is skipped
 * for BREAKER_OPEN_MS (onStoreDown decides at once) before a request tries it again. A change of state is logged
 * once and shown by `gantry_rate_limit_store_up`.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #client: GcraClient;
  #openUntil = 0;
  #up = true;

  private constructor(client: Redis, private readonly url: string, private readonly log: Logger, private readonly events: PolicyEvents) {
    client.defineCommand('gcra', { numberOfKeys: 1, lua: GCRA_SCRIPT });
    this.#client = client as GcraClient;
    client.on('error', () => {});   // reported per failed command (#failed); ioredis reconnects by itself
    client.on('ready', () => this.#state(true));
    events.rateLimitStore(true);
  }

  static async create(url: string, timeoutMs: number, log: Logger, events: PolicyEvents): Promise<RedisRateLimiter> {
    const { Redis } = await import('ioredis');
    const client = new Redis(url, {
      commandTimeout: timeoutMs, connectTimeout: Math.max(timeoutMs, 1000), enableOfflineQueue: false, maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(times * 100, 1000), lazyConnect: false,
    });
    const limiter = new RedisRateLimiter(client, url, log, events);
    // The config waits (briefly) for the connection, so its first requests find the store ready.
    if (client.status !== 'ready') await Promise.race([once(client, 'ready'), setTimeout(Math.max(timeoutMs, 1000))]).catch(() => {});
    return limiter;
  }

  take(key: string, limit: GcraLimit): null | Promise<GcraDecision | null> {
    if (this.#openUntil > Date.now()) return null;
    if (this.#client.status !== 'ready') return this.#failed(new Error(`not connected (${this.#client.status})`));
    return this.#client.gcra(`gantry:rl:${key}`, Math.max(1, Math.round(limit.intervalMs * 1000)), limit.burst).then(
      ([allowed, remaining, resetUs, retryUs]) => {
        if (!this.#up) this.#state(true);   // a store that hung and answers again
        return { allowed: allowed === 1, remaining, resetMs: resetUs / 1000, retryAfterMs: retryUs / 1000 };
      },
      (err: unknown) => this.#failed(err),
    );
  }

  #failed(err: unknown): null {
    this.#openUntil = Date.now() + BREAKER_OPEN_MS;
    this.events.rateLimitStoreFailed();
    if (this.#up) this.log.warn({ err, event: 'rate-limit-store-down', url: this.#redacted() }, 'the rate-limit store does not answer; onStoreDown decides until it does');
    this.#state(false);
    return null;
  }

  #state(up: boolean): void {
    if (up === this.#up) return;
    this.#up = up;
    if (up) {
      this.#openUntil = 0;
      this.log.info({ event: 'rate-limit-store-up', url: this.#redacted() }, 'the rate-limit store answers again');
    }
    this.events.rateLimitStore(up);
  }

  #redacted(): string {
    return this.url.replace(/\/\/[^@/]*@/, '//***@');
  }

  close(): void {
    this.#client.disconnect();
  }
}
