import { setTimeout as delay } from 'node:timers/promises';

/**
 * Waiting helpers for plugins: every wait ends early when `signal` aborts, so closing a watch never leaves a timer.
 */

/** Resolves after `ms`, or at once when `signal` aborts (it never rejects: callers check `signal.aborted`). */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch((err: unknown) => { if (!signal.aborted) throw err; });
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** A signal aborted by either `signal` or `ms` passing. */
export function withTimeout(signal: AbortSignal, ms: number): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(ms)]);
}

/**
 * An async queue that turns callbacks (watch events, stream lines) into an async iterable. `fail` ends iteration by
 * throwing, which is how a plugin tells core that its source went down.
 */
export class UpdateQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #error: { error: unknown } | null = null;
  #ended = false;
  #wake: (() => void) | null = null;

  push(item: T): void {
    if (this.#ended || this.#error) return;
    this.#items.push(item);
    this.#notify();
  }

  fail(error: unknown): void {
    if (this.#ended || this.#error) return;
    this.#error = { error };
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) { yield item; continue; }
      if (this.#error) throw this.#error.error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => { this.#wake = resolve; });
    }
  }
}
