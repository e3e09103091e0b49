import type { RuntimeSnapshot } from './runtime-snapshot.js';

/** One snapshot plus the count of requests using it; retired generations are disposed when that count is 0. */
export class Generation {
  active = 0;
  #retired = false;
  #onIdle: (() => void) | undefined;

  constructor(readonly snapshot: RuntimeSnapshot) {}

  release(): void {
    if (--this.active === 0 && this.#retired) this.#dispose();
  }

  retire(onIdle: () => void): void {
    this.#retired = true;
    this.#onIdle = onIdle;
    if (this.active === 0) this.#dispose();
  }

  #dispose(): void {
    const cb = this.#onIdle;
    this.#onIdle = undefined;
    cb?.();
  }
}

/**
 * The current generation. Each request reads it once (`acquire`) and keeps it to the end, so in-flight requests
 * finish on the config they started with while new ones see the new config (traefik's handler_switcher does this).
 */
export class SnapshotHolder {
  #current: Generation | undefined;

  get current(): RuntimeSnapshot | undefined {
    return this.#current?.snapshot;
  }

  acquire(): Generation | undefined {
    const g = this.#current;
    if (g) g.active++;
    return g;
  }

  /** Swaps in `next` in one assignment; `onOldIdle` runs once no request uses the previous generation. */
  swap(next: RuntimeSnapshot, onOldIdle: (old: RuntimeSnapshot) => void): void {
    const old = this.#current;
    this.#current = new Generation(next);
    old?.retire(() => onOldIdle(old.snapshot));
  }
}
