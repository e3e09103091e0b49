/** The window a service is kept for until the scaling loop configures it. */
export const DEFAULT_STABLE_WINDOW_MS = 60_000;

/**
 * Per-service load state kept over a window of `windowMs`, and the window each service is configured for: the part
 * the LoadRecorder (one process) and SummedLoad (cluster primary) share. A service is created on first use with its
 * configured window; a new window length starts its history afresh, with `carryOver` moving the gauges across.
 */
export class WindowedServices<T extends { readonly windowMs: number }> {
  readonly #services = new Map<string, T>();
  readonly #windowMs = new Map<string, number>();

  /** `create(windowMs)`: fresh state; `carryOver(from, to)`: what outlives a window change (gauges, not history). */
  constructor(
    private readonly create: (windowMs: number) => T,
    private readonly carryOver: (from: T, to: T) => void,
  ) {}

  /** The service's state, created with its configured window if it has none yet. */
  get(service: string): T {
    let state = this.#services.get(service);
    if (state === undefined) {
      state = this.create(this.#windowMs.get(service) ?? DEFAULT_STABLE_WINDOW_MS);
      this.#services.set(service, state);
    }
    return state;
  }

  /** The service's state if it has any (nothing is created). */
  peek(service: string): T | undefined {
    return this.#services.get(service);
  }

  /** Sets the longest window kept for a service; a change starts its history afresh. */
  configure(service: string, windowMs: number): void {
    this.#windowMs.set(service, windowMs);
    const state = this.#services.get(service);
    if (state && state.windowMs !== windowMs) {
      const fresh = this.create(windowMs);
      this.carryOver(state, fresh);
      this.#services.set(service, fresh);
    }
  }

  /** Forgets services not in `services`. */
  retain(services: ReadonlySet<string>): void {
    for (const name of this.#services.keys()) if (!services.has(name)) this.#services.delete(name);
    for (const name of this.#windowMs.keys()) if (!services.has(name)) this.#windowMs.delete(name);
  }

  entries(): IterableIterator<[string, T]> {
    return this.#services.entries();
  }

  values(): IterableIterator<T> {
    return this.#services.values();
  }
}
