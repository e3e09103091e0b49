import { performance } from 'node:perf_hooks';

/** One armed timer of a TimerList; `TimerList.cancel` disarms it. */
export class Timer<T> {
  prev: Timer<T> | null = null;
  next: Timer<T> | null = null;
  constructor(readonly list: TimerList<T>, readonly target: T, readonly dueAt: number) {}
}

/**
 * Timers that all run for the same duration, as a list in the order they were armed, behind one Node timer set for
 * the first of them. The gateway arms two per request (the route deadline and the per-try timeout), one duration per
 * route each, and nearly always cancels them: here arming and cancelling are an object and a few pointer writes, where
 * Node's setTimeout makes a Timeout with its async id and clearTimeout unlinks it (npm run bench:instructions, one run
 * each: about 8k fewer instructions per request). Same duration means the list is ordered by due time, so only its head
 * needs a Node timer; that timer is re-armed only when it fires. Due times are on the monotonic clock.
 */
export class TimerList<T> {
  #head: Timer<T> | null = null;
  #tail: Timer<T> | null = null;
  #node: NodeJS.Timeout | undefined = undefined;
  /** When the Node timer fires (monotonic ms), or -1 while none is armed. */
  #nodeDueAt = -1;
  readonly #onFire = (): void => this.#fired();

  constructor(readonly durationMs: number, private readonly fire: (target: T) => void) {}

  /** Arms a timer for `target`: `fire(target)` in durationMs unless cancelled first. */
  start(target: T): Timer<T> {
    const t = new Timer(this, target, performance.now() + this.durationMs);
    const tail = this.#tail;
    if (tail === null) this.#head = t;
    else { tail.next = t; t.prev = tail; }
    this.#tail = t;
    if (this.#nodeDueAt < 0) this.#arm(this.durationMs, t.dueAt);
    // A Node timer left from an emptied list (see cancel) is unref'd: due no later than this one, it holds the process again.
    else if (tail === null) (this.#node as NodeJS.Timeout).ref();
    return t;
  }

  /** Disarms a timer (one that has fired or was cancelled already is left alone). */
  static cancel<T>(t: Timer<T>): void {
    t.list.#unlink(t);
  }

  #unlink(t: Timer<T>): void {
    if (t.prev === null && this.#head !== t) return;   // fired or cancelled already
    if (t.prev === null) this.#head = t.next; else t.prev.next = t.next;
    if (t.next === null) this.#tail = t.prev; else t.next.prev = t.prev;
    t.prev = null;
    t.next = null;
    // Left to fire for nothing, it must not keep the process alive meanwhile (Node's clearTimeout would not either).
    if (this.#head === null && this.#node !== undefined) this.#node.unref();
  }

  #arm(delayMs: number, dueAt: number): void {
    this.#nodeDueAt = dueAt;
    this.#node = setTimeout(this.#onFire, delayMs < 1 ? 1 : Math.ceil(delayMs));
    if (this.#head === null) this.#node.unref();
  }

  #fired(): void {
    this.#nodeDueAt = -1;
    this.#node = undefined;
    const now = performance.now();
    for (let t = this.#head; t !== null && t.dueAt <= now; t = this.#head) {
      this.#unlink(t);
      this.fire(t.target);
    }
    const head = this.#head;
    if (head !== null && this.#nodeDueAt < 0) this.#arm(head.dueAt - now, head.dueAt);
  }
}

/** The TimerLists of one callback, by duration (a route's deadline, a route's per-try timeout). */
export class TimerLists<T> {
  readonly #lists = new Map<number, TimerList<T>>();
  #last: TimerList<T> | undefined = undefined;

  constructor(private readonly fire: (target: T) => void) {}

  start(durationMs: number, target: T): Timer<T> {
    let list = this.#last;
    if (list === undefined || list.durationMs !== durationMs) {
      list = this.#lists.get(durationMs);
      if (list === undefined) this.#lists.set(durationMs, list = new TimerList(durationMs, this.fire));
      this.#last = list;
    }
    return list.start(target);
  }
}
