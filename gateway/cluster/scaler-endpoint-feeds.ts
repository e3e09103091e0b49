import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import { SCALER_DISCOVERY_TYPE } from '../config/scaling-config.js';
import { backoffStepMs, type Backoff } from '../plugin-api/backoff.js';
import type { Discovery, DiscoveryUpdate, Endpoint } from '../plugin-api/discovery.js';
import { PoolManager } from '../upstream/pool-manager.js';

/** The wait before re-watching a scaler's endpoint stream that ended or failed; reset by an update. */
const RETRY_BACKOFF: Backoff = { initialMs: 250, maxMs: 10_000 };

interface Feed {
  readonly key: string;
  readonly service: string;
  readonly discovery: Discovery;
  readonly abort: AbortController;
  endpoints: readonly Endpoint[] | null;
  /** Configs of the primary's that name it: the serving one, and one being prepared. */
  configRefs: number;
  /** Workers with a pool on it (a worker's old generation keeps its pool until it retires). */
  readonly workers: Set<number>;
}

function applyUpdate(endpoints: readonly Endpoint[] | null, u: DiscoveryUpdate): readonly Endpoint[] | null {
  switch (u.kind) {
    case 'reset': return u.endpoints;
    case 'add': {
      const added = new Set(u.endpoints.map((e) => e.address));
      return [...(endpoints ?? []).filter((e) => !added.has(e.address)), ...u.endpoints];
    }
    case 'remove': return (endpoints ?? []).filter((e) => !u.addresses.includes(e.address));
    case 'not-found': return [];
    case 'error': return endpoints;
  }
}

/**
 * In the cluster primary, the endpoints of the services whose scaler runs the instances (`discovery: { type:
 * scaler }`): the primary's scaling loop owns the scaler, so it alone knows the ports. One feed per pool key watches
 * the scaler's endpoint stream and broadcasts each new set to every worker, whose pools list it (worker-scaling.ts).
 *
 * A feed lives as long as a config of the primary's names it or a worker has a pool on it, as the scaler instance
 * does for pools in one process: new scaler options start a new set of instances while the old set serves the
 * workers' old generation, and stop once the last worker retired it (or exited).
 */
export class ScalerEndpointFeeds {
  readonly #feeds = new Map<string, Feed>();

  constructor(
    /** The scaling loop's `scalerEndpoints`: acquires the scaler instance (starting it at the count in force). */
    private readonly source: (s: ServiceConfig) => Discovery | undefined,
    private readonly broadcast: (key: string, endpoints: readonly Endpoint[] | null) => void,
    private readonly log: Logger,
  ) {}

  /** Takes a reference on the feed of every scaler-fed service of `config`; throws (holding none) if a scaler cannot start. */
  acquire(config: GatewayConfig): void {
    const taken: Feed[] = [];
    try {
      for (const s of config.services.values()) {
        if (s.discovery.type !== SCALER_DISCOVERY_TYPE) continue;
        const feed = this.#feeds.get(PoolManager.keyOf(s)) ?? this.#open(s);
        feed.configRefs++;
        taken.push(feed);
      }
    } catch (err) {
      for (const feed of taken) { feed.configRefs--; this.#closeIfUnused(feed); }
      throw err;
    }
  }

  release(config: GatewayConfig): void {
    for (const s of config.services.values()) {
      const feed = this.#feeds.get(PoolManager.keyOf(s));
      if (!feed || s.discovery.type !== SCALER_DISCOVERY_TYPE) continue;
      feed.configRefs--;
      this.#closeIfUnused(feed);
    }
  }

  /** A worker's pool takes the feed: it gets the current set at once (later ones come by broadcast). */
  watch(worker: number, key: string, send: (endpoints: readonly Endpoint[]) => void): void {
    const feed = this.#feeds.get(key);
    if (!feed) {
      // A worker that started on a file the primary has not validated (changed on disk without a reload).
      this.log.warn({ event: 'scaler-feed-unknown', worker }, 'a worker asked for scaler endpoints of a config the primary does not serve: reload to align them');
      return;
    }
    feed.workers.add(worker);
    if (feed.endpoints !== null) send(feed.endpoints);
  }

  unwatch(worker: number, key: string): void {
    const feed = this.#feeds.get(key);
    if (!feed) return;
    feed.workers.delete(worker);
    this.#closeIfUnused(feed);
  }

  workerGone(worker: number): void {
    for (const feed of [...this.#feeds.values()]) {
      if (feed.workers.delete(worker)) this.#closeIfUnused(feed);
    }
  }

  async closeAll(): Promise<void> {
    const feeds = [...this.#feeds.values()];
    this.#feeds.clear();
    await Promise.all(feeds.map((f) => this.#close(f)));
  }

  #open(s: ServiceConfig): Feed {
    const discovery = this.source(s);
    if (!discovery) throw new Error(`the scaler of ${s.name} does not list endpoints`);   // the loader already refused it
    const feed: Feed = { key: PoolManager.keyOf(s), service: s.name, discovery, abort: new AbortController(), endpoints: null, configRefs: 0, workers: new Set() };
    this.#feeds.set(feed.key, feed);
    void this.#run(feed);
    return feed;
  }

  /** Watches the scaler's stream until the feed closes; a stream that fails or ends is watched again with backoff. */
  async #run(feed: Feed): Promise<void> {
    const { signal } = feed.abort;
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (const u of feed.discovery.watch(feed.service, signal)) {
          const next = applyUpdate(feed.endpoints, u);
          failures = 0;
          if (next === feed.endpoints || signal.aborted) continue;
          feed.endpoints = next;
          this.broadcast(feed.key, next);
        }
      } catch (err) {
        if (signal.aborted) return;
        this.log.warn({ event: 'scaler-feed-failed', service: feed.service, err: (err as Error).message, retryInMs: backoffStepMs(failures + 1, RETRY_BACKOFF) }, 'the scaler\'s endpoint stream failed; the workers keep the last set');
      }
      await delay(backoffStepMs(++failures, RETRY_BACKOFF), undefined, { ref: false });
    }
  }

  #closeIfUnused(feed: Feed): void {
    if (feed.configRefs > 0 || feed.workers.size > 0 || this.#feeds.get(feed.key) !== feed) return;
    this.#feeds.delete(feed.key);
    void this.#close(feed);
  }

  async #close(feed: Feed): Promise<void> {
    feed.abort.abort();
    this.broadcast(feed.key, null);
    try {
      await feed.discovery.close();
    } catch (err) {
      this.log.warn({ err, service: feed.service }, 'closing the scaler\'s endpoint feed failed');
    }
  }
}
