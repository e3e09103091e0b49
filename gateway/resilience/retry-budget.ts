/**
 * Envoy's and Linkerd's retry budget: over a sliding window, retries may add at most `ratio` of the requests, plus a
 * floor of `minPerSecond` so a quiet service can still retry. A failing upstream then sees at most
 * (1 + ratio) × the client rate + the floor, never a retry storm. One-second buckets; O(window seconds) per retry
 * decision and O(1) per request.
 */
export class RetryBudget {
  readonly #requests: Float64Array;
  readonly #retries: Float64Array;
  #second = -1;
  #slot = 0;
  /** Seconds seen so far, up to the window: the floor accrues per second instead of being banked at start. */
  #seconds = 0;

  constructor(private readonly ratio: number, private readonly minPerSecond: number, windowMs: number) {
    const slots = Math.max(1, Math.ceil(windowMs / 1000));
    this.#requests = new Float64Array(slots);
    this.#retries = new Float64Array(slots);
  }

  #rotate(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second === this.#second) return;
    const n = this.#requests.length;
    const steps = this.#second < 0 ? n : Math.min(second - this.#second, n);
    for (let i = 0; i < steps; i++) {
      this.#slot = (this.#slot + 1) % n;
      this.#requests[this.#slot] = 0;
      this.#retries[this.#slot] = 0;
    }
    this.#seconds = Math.min(n, this.#second < 0 ? 1 : this.#seconds + steps);
    this.#second = second;
  }

  recordRequest(nowMs: number): void {
    this.#rotate(nowMs);
    this.#requests[this.#slot] = (this.#requests[this.#slot] as number) + 1;
  }

  /** Takes one retry from the budget if there is one left. */
  tryAcquire(nowMs: number): boolean {
    this.#rotate(nowMs);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < this.#requests.length; i++) {
      requests += this.#requests[i] as number;
      retries += this.#retries[i] as number;
    }
    const allowed = this.ratio * requests + this.minPerSecond * this.#seconds;
    if (retries + 1 > allowed) return false;
    this.#retries[this.#slot] = (this.#retries[this.#slot] as number) + 1;
    return true;
  }
}
