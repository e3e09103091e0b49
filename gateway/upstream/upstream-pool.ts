import type { Logger } from 'pino';
import { sleep } from '../plugin-api/abortable.js';
import { backoffStepMs, type Backoff } from '../plugin-api/backoff.js';
import type { Discovery, DiscoveryUpdate, Endpoint } from '../plugin-api/discovery.js';
import type { EndpointSettings, EndpointState } from './endpoint-state.js';
import type { EndpointRegistry } from './endpoint-registry.js';

/** Per-service discovery health, for the admin API and metrics. Times are `now()` milliseconds. */
export interface DiscoveryStatus {
  /** The source answered last time it was asked (or its watch is open and healthy). */
  readonly up: boolean;
  /** When `up` last changed; null until the first result or failure. */
  readonly since: number | null;
  /** The last update applied, including a poll that confirmed the same endpoints. */
  readonly lastSuccessAt: number | null;
  readonly lastError: string | null;
  readonly lastErrorAt: number | null;
  /** Failures since the last good update (each failed watch, and each `error` update). */
  readonly failures: number;
  /** Endpoints in the pool now: while down, the last known ones. */
  readonly endpoints: number;
}

export interface PoolOptions {
  readonly service: string;
  readonly discovery: Discovery;
  readonly registry: EndpointRegistry;
  /** For the endpoints it creates while its service is not served yet (EndpointRegistry.acquire). */
  readonly settings: EndpointSettings;
  /** Whether the pool starts out serving (default true); PoolManager starts its pools not serving until a commit. */
  readonly serving?: boolean;
  readonly log: Logger;
  readonly now: () => number;
  readonly random?: () => number;
  readonly backoff?: Backoff;
}

/**
 * 200 ms doubling to 1 s. Why 1 s: a source that is back should be watched again at once, since the endpoints kept
 * while it was down go stale (measured with a 30 s cap: a key deleted during a 5 s etcd outage kept its traffic for up
 * to 9.4 s); one failed watch a second per service is little load even for a source that stays down.
 */
export const DEFAULT_WATCH_BACKOFF: Backoff = { initialMs: 200, maxMs: 1000 };

/**
 * The wait before re-watch number `attempt` (1 for the first failure): a random point in the upper half of the
 * step (equal jitter). The jitter spreads the re-watches of many gateways; the half kept fixed means that no
 * draw of `random` can turn a source failing at once into a hot loop.
 */
export function watchRetryDelayMs(attempt: number, backoff: Backoff, random: () => number): number {
  const stepMs = backoffStepMs(attempt, backoff);
  return stepMs / 2 + random() * (stepMs / 2);
}

/**
 * The live endpoints of one service, fed by its discovery watch. `endpoints` is replaced (never mutated) on each
 * change, so a balancer can cache work per list and see a consistent set within one pick.
 *
 * A failing source never empties the pool: the last endpoints stay while the watch is retried with jittered backoff.
 *
 * Endpoint state is shared with the other pools of the service (EndpointRegistry), so only a serving pool writes the
 * weights its source gives; a pool of a config still being prepared, or of a retired one, keeps them to itself.
 */
export class UpstreamPool {
  endpoints: readonly EndpointState[] = [];
  readonly service: string;
  readonly ready: Promise<void>;
  #status: DiscoveryStatus = { up: false, since: null, lastSuccessAt: null, lastError: null, lastErrorAt: null, failures: 0, endpoints: 0 };
  /** What the source last listed, in the order of `endpoints`: the weights are the source's, whoever else lists them. */
  #listed: readonly Endpoint[] = [];
  #serving: boolean;
  #markReady!: () => void;
  readonly #abort = new AbortController();
  readonly #o: PoolOptions;
  #running: Promise<void> | undefined;

  constructor(options: PoolOptions) {
    this.#o = options;
    this.service = options.service;
    this.#serving = options.serving ?? true;
    this.ready = new Promise((resolve) => { this.#markReady = resolve; });
  }

  get status(): DiscoveryStatus {
    return this.#status;
  }

  start(): void {
    this.#running ??= this.#watchLoop();
  }

  /** Starts (writing its source's weights to its endpoints) or stops serving. */
  serve(serving: boolean): void {
    this.#serving = serving;
    if (!serving) return;
    const listed = this.#listed;
    if (this.endpoints.every((e, i) => e.weight === listed[i]!.weight)) return;
    this.endpoints.forEach((e, i) => { e.weight = listed[i]!.weight; });
    // A new list, so balancers that cache per list (random, consistent-hash) see the weights.
    this.endpoints = Object.freeze([...this.endpoints]);
  }

  readonly #listeners = new Set<() => void>();

  /** Calls `listener` after each applied discovery update (the scale-from-zero hold waits on it). Returns an unsubscribe. */
  onUpdate(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.#running;
    for (const e of this.endpoints) this.#o.registry.release(e);
    this.endpoints = [];
    this.#listed = [];
    await this.#o.discovery.close();
  }

  async #watchLoop(): Promise<void> {
    const backoff = this.#o.backoff ?? DEFAULT_WATCH_BACKOFF;
    const random = this.#o.random ?? Math.random;
    const signal = this.#abort.signal;
    // Failed watches in a row: the backoff exponent. A watch that delivered a good update resets it.
    let attempts = 0;
    while (!signal.aborted) {
      try {
        for await (const update of this.#o.discovery.watch(this.service, signal)) {
          if (signal.aborted) break;
          if (update.kind === 'error') {
            this.#markDown(update.reason);
            continue;
          }
          this.#apply(update);
          attempts = 0;
        }
        if (signal.aborted) break;
        throw new Error('discovery watch ended');
      } catch (err) {
        if (signal.aborted) break;
        attempts++;
        this.#markDown((err as Error)?.message ?? String(err));
        await sleep(watchRetryDelayMs(attempts, backoff, random), signal);
      }
    }
  }

  /** The source failed: keep every endpoint, record why, and log only when the state changes. */
  #markDown(message: string): void {
    const s = this.#status;
    const now = this.#o.now();
    if (s.up || s.since === null) {
      this.#o.log.warn({ event: 'discovery-down', err: message, keptEndpoints: this.endpoints.length }, 'discovery source down; keeping the last endpoints');
    }
    this.#status = {
      ...s, up: false, since: s.up || s.since === null ? now : s.since, lastError: message, lastErrorAt: now, failures: s.failures + 1,
    };
  }

  #apply(update: Exclude<DiscoveryUpdate, { kind: 'error' }>): void {
    const before = this.endpoints;
    const listed = this.#listed;
    let next: Endpoint[];
    switch (update.kind) {
      case 'reset': next = [...update.endpoints]; break;
      case 'not-found': next = []; break;
      case 'add': {
        const adding = new Map(update.endpoints.map((e) => [e.address, e]));
        next = [...listed.filter((e) => !adding.has(e.address)), ...adding.values()];
        break;
      }
      case 'remove': {
        const removing = new Set(update.addresses);
        next = listed.filter((e) => !removing.has(e.address));
        break;
      }
    }
    next = dedupe(next);
    const s = this.#status;
    const now = this.#o.now();
    // A poll that confirms the same set keeps the list (and so each balancer's state built on it).
    if (!sameEndpoints(listed, next)) this.#replace(next);
    this.#status = { up: true, since: s.up ? s.since : now, lastSuccessAt: now, lastError: s.lastError, lastErrorAt: s.lastErrorAt, failures: 0, endpoints: this.endpoints.length };
    if (!s.up) {
      this.#o.log.info({ event: 'discovery-up', endpoints: this.endpoints.length, downForMs: s.since === null ? undefined : now - s.since }, 'discovery source up');
    }
    if (before.length >= 2 && this.endpoints.length < before.length / 2) {
      // Loud on purpose: a registry that loses most instances at once is more often broken than right.
      this.#o.log.error({ event: 'discovery-mass-removal', before: before.length, after: this.endpoints.length }, 'discovery dropped most endpoints at once');
    }
    this.#markReady();
    for (const listener of this.#listeners) listener();
  }

  #replace(next: readonly Endpoint[]): void {
    const old = new Map(this.endpoints.map((e) => [e.address, e]));
    const fresh: EndpointState[] = [];
    for (const e of next) {
      const kept = old.get(e.address);
      const state = kept ?? this.#o.registry.acquire(this.service, e, this.#o.settings);
      old.delete(e.address);
      if (this.#serving) state.weight = e.weight;
      fresh.push(state);
    }
    this.#listed = next;
    this.endpoints = Object.freeze(fresh);
    for (const gone of old.values()) this.#o.registry.release(gone);
  }
}

/** One entry per address (the last wins): two registry records for one address are one endpoint. */
function dedupe(list: Endpoint[]): Endpoint[] {
  const byAddress = new Map(list.map((e) => [e.address, e]));
  return byAddress.size === list.length ? list : [...byAddress.values()];
}

function sameEndpoints(before: readonly Endpoint[], next: readonly Endpoint[]): boolean {
  if (before.length !== next.length) return false;
  const weights = new Map(before.map((e) => [e.address, e.weight]));
  return next.every((e) => weights.get(e.address) === e.weight);
}
