import type { Logger } from 'pino';

/** One config's hold on a shared thing (PolicyRuntime.share): released when that config retires. */
export interface Shared<T> {
  readonly value: T;
  /** This holder is done with it; the last one's release closes it. Once, however often called. */
  release(): Promise<void>;
}

interface Entry {
  readonly value: unknown;
  readonly close: ((value: unknown) => unknown) | undefined;
  holders: number;
}

/**
 * What policies share across configs, counted by holder: a thing is made by the first config that asks for its key
 * and closed when the last config holding it retires. A reload builds the new config before the old one retires, so
 * what both use (a Redis client for the same URL, a key set) carries over, and what only the old one used (the client
 * of a URL the reload changed or removed) is closed with it.
 */
export class SharedResources {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly log: Logger) {}

  share<T>(key: string, make: () => T, close?: (value: T) => unknown): Shared<T> {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { value: make(), close: close as ((value: unknown) => unknown) | undefined, holders: 0 };
      this.#entries.set(key, entry);
    }
    entry.holders++;
    const held = entry;
    let released = false;
    return {
      value: held.value as T,
      release: async () => {
        if (released) return;
        released = true;
        if (--held.holders > 0 || this.#entries.get(key) !== held) return;
        this.#entries.delete(key);
        await this.#close(held);
      },
    };
  }

  /** At shutdown: whatever is still held (a retiring config that has not let go yet). */
  async closeAll(): Promise<void> {
    const entries = [...this.#entries];
    this.#entries.clear();
    await Promise.all(entries.map(([, entry]) => this.#close(entry)));
  }

  async #close(entry: Entry): Promise<void> {
    try {
      await entry.close?.(entry.value);
    } catch (err) {
      this.log.warn({ err }, 'a resource shared by policies failed to close');
    }
  }
}
