import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** How a reload spent its time, and how long it held the event loop at worst (logged and exported as metrics). */
export interface ReloadTiming {
  /**
   * The longest the event loop was blocked while the reload ran: the longest gap between ticks of a
   * LOOP_RESOLUTION_MS timer, minus that period (so a free loop reads about 0; it can read low by up to the period).
   */
  readonly loopDelayMaxMs: number;
  /** Wall time from the start of the reload to its end (commit, abort or refusal). */
  readonly totalMs: number;
  /**
   * Wall time per phase, in the order they ran: read, parse, validate, check (for a large file these three run in the
   * parse worker: `worker` is then the wall time until its answer was in, those included, and `receive` taking the
   * routes from it in slices), plugins, services, diff, build, warm, swap, apply (gateway/config/load-routes-file.ts).
   */
  readonly phasesMs: Readonly<Record<string, number>>;
}

/** The sampling period of the event-loop monitor; 10 ms as prom-client and @fastify/under-pressure use. */
export const LOOP_RESOLUTION_MS = 10;

const round = (ms: number) => Math.round(ms * 10) / 10;

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, LOOP_RESOLUTION_MS + 1));

/**
 * Event-loop-delay monitors for reload timers, reused: Node does not free a monitor it made (4 000 timed reloads
 * grew the RSS by 85 MiB with a monitor each, by 9 MiB reusing them), so a new one is made only while all the others
 * are timing a reload.
 */
export class LoopMonitors {
  readonly #idle: IntervalHistogram[] = [];

  constructor(private readonly create = () => monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })) {}

  take(): IntervalHistogram {
    const loop = this.#idle.pop() ?? this.create();
    loop.reset();
    loop.enable();
    return loop;
  }

  give(loop: IntervalHistogram): void {
    loop.disable();
    this.#idle.push(loop);
  }
}

const processMonitors = new LoopMonitors();

/**
 * Times one reload. The event-loop monitor runs only while the reload does (its own histogram, so the process-wide
 * nodejs_eventloop_lag_* metrics are untouched). The monitor records a gap only when its timer fires after it, and its
 * first tick records nothing: so `start` waits one tick before the reload's work begins, and `finish` one tick after
 * it ends (measured: a 100 ms block right after enable(), or just before reading max, was not seen otherwise).
 */
export class ReloadTimer {
  readonly #loop: IntervalHistogram;
  readonly #monitors: LoopMonitors;
  readonly #started = performance.now();
  readonly #phases: Record<string, number> = {};
  #last = this.#started;
  #finished: Promise<ReloadTiming> | undefined;

  private constructor(loop: IntervalHistogram, monitors: LoopMonitors) {
    this.#loop = loop;
    this.#monitors = monitors;
  }

  /** Starts timing; `finish` must be called (it gives the monitor back). */
  static async start(monitors = processMonitors): Promise<ReloadTimer> {
    const loop = monitors.take();
    await tick();
    return new ReloadTimer(loop, monitors);
  }

  /** Ends `phase` now: it took the time since the previous lap (or the start). */
  lap(phase: string): void {
    const now = performance.now();
    this.record(phase, now - this.#last);
    this.#last = now;
  }

  /** Adds a duration measured elsewhere (another thread) to `phase`, without moving the lap clock. */
  record(phase: string, ms: number): void {
    this.#phases[phase] = round((this.#phases[phase] ?? 0) + ms);
  }

  /** Stops timing now; the result is ready one monitor tick later. Later calls return the same result. */
  finish(): Promise<ReloadTiming> {
    this.#finished ??= this.#settle(round(performance.now() - this.#started), { ...this.#phases });
    return this.#finished;
  }

  async #settle(totalMs: number, phasesMs: Record<string, number>): Promise<ReloadTiming> {
    await tick();
    const maxMs = this.#loop.count ? this.#loop.max / 1e6 : LOOP_RESOLUTION_MS;
    this.#monitors.give(this.#loop);
    return { loopDelayMaxMs: round(Math.max(0, maxMs - LOOP_RESOLUTION_MS)), totalMs, phasesMs };
  }
}
