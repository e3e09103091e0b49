/**
 * A service's concurrency limit: at most `capacity` requests hold a slot, up to `queueCapacity` more wait in arrival
 * order, and the rest are refused (503 GW_ERR_OVERLOADED). The same rules as cockatiel's BulkheadPolicy, but
 * synchronous: a request takes its slot with `enter` and gives it back with `leave`, so the common request, which finds
 * a free slot, runs without the async function, the awaits and the promises that `execute(fn)` wraps around it
 * (with the first try's callback path in service-pipeline.ts, npm run bench:instructions, one run each: about 12k fewer instructions
 * per request).
 */
export class Bulkhead {
  #active = 0;
  readonly #queue: (() => void)[] = [];
  #queueHead = 0;

  constructor(readonly capacity: number, readonly queueCapacity: number) {}

  /** Takes a slot if one is free; the caller then calls `leave` once done. */
  tryEnter(): boolean {
    if (this.#active >= this.capacity) return false;
    this.#active++;
    return true;
  }

  /**
   * Queues `start` for the next free slot, in arrival order: false when the queue is full (refused). `start` holds the
   * slot when it is called, and must `leave` too.
   */
  wait(start: () => void): boolean {
    if (this.#queue.length - this.#queueHead >= this.queueCapacity) return false;
    this.#queue.push(start);
    return true;
  }

  /** Gives a slot back; the first waiter, if any, gets it and starts in a microtask (as cockatiel hands it on). */
  leave(): void {
    this.#active--;
    if (this.#queueHead === this.#queue.length) return;
    const next = this.#queue[this.#queueHead] as () => void;
    this.#queue[this.#queueHead++] = noop;
    if (this.#queueHead === this.#queue.length) { this.#queue.length = 0; this.#queueHead = 0; }
    this.#active++;
    queueMicrotask(next);
  }
}

function noop(): void {}
