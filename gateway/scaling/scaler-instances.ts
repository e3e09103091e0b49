import type { Logger } from 'pino';
import type { ScalingConfig } from '../config/scaling-config.js';
import type { Discovery } from '../plugin-api/discovery.js';
import { pluginContext } from '../plugin-api/plugin-context.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { Scaler } from '../plugin-api/scaler.js';

/** One scaler instance for one service, shared by whatever uses it (the scaling loop, a scaler-fed pool). */
export interface ScalerInstance {
  readonly key: string;
  readonly service: string;
  readonly type: string;
  readonly scaler: Scaler;
  /** Calls to this instance run one after another: the contract promises one call in flight per service. */
  run<T>(call: () => Promise<T>): Promise<T>;
}

interface Entry extends ScalerInstance {
  refs: number;
  readonly abort: AbortController;
  tail: Promise<unknown>;
  pending: number;
}

/**
 * Scaler instances keyed by service + scaler type and options, counted by reference like the discovery pools: a
 * reload that keeps the options keeps the instance (and the processes it runs); one that changes them creates a new
 * instance while the old one serves the old generation, then closes it when nothing uses it.
 */
export class ScalerInstances {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly plugins: PluginRegistry,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  static keyOf(service: string, scaling: ScalingConfig): string {
    return `${service}\n${scaling.scaler.key}`;
  }

  get(key: string): ScalerInstance | undefined {
    return this.#entries.get(key);
  }

  /** Takes a reference; `created` says whether this call made the instance. */
  acquire(service: string, scaling: ScalingConfig): { instance: ScalerInstance; created: boolean } {
    const key = ScalerInstances.keyOf(service, scaling);
    const found = this.#entries.get(key);
    if (found) {
      found.refs++;
      return { instance: found, created: false };
    }
    const plugin = this.plugins.scaler(scaling.scaler.type);
    if (!plugin) throw new Error(`unknown scaler type ${scaling.scaler.type}`);   // the loader already refused it
    const abort = new AbortController();
    const log = this.log.child({ scaler: plugin.type, service });
    const scaler = plugin.create(scaling.scaler.options, pluginContext(log, abort.signal, this.now, scaling.scaler.baseDir));
    const entry: Entry = {
      key, service, type: plugin.type, scaler, refs: 1, abort, tail: Promise.resolve(), pending: 0,
      run<T>(call: () => Promise<T>): Promise<T> {
        // Nothing in flight: start now, synchronously (a new instance is asked for its count before anyone watches it).
        const result = entry.pending === 0 ? call() : entry.tail.then(call, call);
        entry.pending++;
        entry.tail = result.catch(() => {}).finally(() => { entry.pending--; });
        return result;
      },
    };
    this.#entries.set(key, entry);
    return { instance: entry, created: true };
  }

  async release(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (!entry || --entry.refs > 0) return;
    this.#entries.delete(key);
    entry.abort.abort();
    try {
      await entry.scaler.close();
    } catch (err) {
      this.log.warn({ err, service: entry.service, scaler: entry.type }, 'scaler close failed');
    }
  }

  /** A Discovery over a scaler's endpoint stream; closing it drops the pool's reference. */
  discovery(instance: ScalerInstance): Discovery {
    const endpoints = instance.scaler.endpoints;
    if (!endpoints) throw new Error(`the ${instance.type} scaler does not run the instances: it cannot list endpoints`);
    let closed = false;
    return {
      watch: (service, signal) => endpoints.call(instance.scaler, service, signal),
      close: async () => {
        if (closed) return;
        closed = true;
        await this.release(instance.key);
      },
    };
  }

  async closeAll(): Promise<void> {
    const keys = [...this.#entries.keys()];
    for (const key of keys) {
      const e = this.#entries.get(key);
      if (e) e.refs = 1;
    }
    await Promise.all(keys.map((k) => this.release(k)));
  }
}
