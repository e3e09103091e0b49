import { sharedClockMs, type LoadSource, type ServiceLoadSnapshot, type ServiceSignals, type ServiceTotals } from './load-recorder.js';
import { WindowedServices } from './windowed-services.js';
import { ringSecondsFor, SECOND_MS, WindowSum, wholeSecondsOf, windowSpanMs, type LoadSecond } from './window-sum.js';

/** What one worker last reported for one service. */
interface WorkerLoad {
  /** Clock reading when the worker took its snapshot. */
  at: number;
  live: boolean;
  inFlight: number;
  waiting: number;
  lastRequestAt: number;
  /** Per second, the worker's latest snapshot of it (a partial second is re-sent until it is over). */
  readonly seconds: Map<number, LoadSecond>;
}

class SummedService {
  readonly workers = new Map<number, WorkerLoad>();
  readonly sum = new WindowSum();
  readonly ringSeconds: number;

  constructor(readonly windowMs: number, readonly createdAt: number) {
    this.ringSeconds = ringSecondsFor(windowMs);
  }
}

/**
 * The cluster primary's load source: the sum of what the workers record. Each worker ships, every few hundred
 * milliseconds, its per-second buckets since its last shipment (the current second again, as it grew) and its
 * in-flight and waiting gauges; this keeps the latest snapshot per worker and second, so a repeated or late
 * shipment never counts twice, and sums over workers when the scaling loop reads a window.
 *
 * A worker that exits stops counting at once in the gauges (its requests in flight died with it) but its finished
 * seconds stay until they leave the window: that traffic happened. Its restart is a new worker id, counted afresh.
 * Peaks are the sum of the workers' peaks in each second, an upper bound of the true concurrent peak.
 */
export class SummedLoad implements LoadSource {
  readonly #services = new WindowedServices<SummedService>(
    (windowMs) => new SummedService(windowMs, this.now()),
    // The gauges of live workers carry over; their seconds start afresh with the new window.
    (from, to) => { for (const [id, w] of from.workers) if (w.live) to.workers.set(id, { ...w, seconds: new Map() }); },
  );
  /** Ready endpoints per service as each live worker's serving config sees them. */
  readonly #ready = new Map<number, ReadonlyMap<string, number>>();
  /** Workers that exited (cluster worker ids are never reused): a message of theirs still in the pipe is ignored. */
  readonly #gone = new Set<number>();

  /** `now`: the clock the workers record by (sharedClockMs), injectable for tests. */
  constructor(readonly now: () => number = sharedClockMs) {}

  configure(service: string, stableWindowMs: number): void {
    this.#services.configure(service, stableWindowMs);
  }

  retain(services: ReadonlySet<string>): void {
    this.#services.retain(services);
  }

  /** A worker's shipment: its snapshot of every service it recorded, taken at `at`, and its ready endpoint counts. */
  receive(worker: number, at: number, services: readonly ServiceLoadSnapshot[], ready: ReadonlyMap<string, number>): void {
    if (this.#gone.has(worker)) return;
    this.#ready.set(worker, ready);
    for (const shipped of services) {
      const s = this.#services.get(shipped.service);
      let w = s.workers.get(worker);
      if (w === undefined) {
        w = { at, live: true, inFlight: 0, waiting: 0, lastRequestAt: -Infinity, seconds: new Map() };
        s.workers.set(worker, w);
      }
      if (at < w.at) continue;   // older than what is already here: nothing to learn
      w.at = at;
      w.inFlight = shipped.inFlight;
      w.waiting = shipped.waiting;
      w.lastRequestAt = shipped.lastRequestAt;
      for (const second of shipped.seconds) w.seconds.set(second.second, second);
    }
  }

  /** The worker exited: its gauges stop counting now; its finished seconds stay until they leave the window. */
  dropWorker(worker: number): void {
    this.#gone.add(worker);
    this.#ready.delete(worker);
    for (const s of this.#services.values()) {
      const w = s.workers.get(worker);
      if (w === undefined) continue;
      w.live = false;
      w.inFlight = 0;
      w.waiting = 0;
    }
  }

  /** Ready endpoints of a service: the most any live worker lists (they watch the same sources). */
  readyEndpoints(service: string): number {
    let most = 0;
    for (const ready of this.#ready.values()) most = Math.max(most, ready.get(service) ?? 0);
    return most;
  }

  signals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceSignals {
    const s = this.#services.get(service);
    const now = this.now();
    this.#prune(s, now);
    const stable = this.#window(s, now, stableWindowMs);
    return { stable: s.sum.signals(stable, stableWindowMs), panic: s.sum.signals(this.#window(s, now, panicWindowMs), panicWindowMs), ...this.#gauges(s, now) };
  }

  totals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceTotals {
    const s = this.#services.get(service);
    const now = this.now();
    this.#prune(s, now);
    const stable = s.sum.totals(this.#window(s, now, stableWindowMs));
    return { stable, panic: s.sum.totals(this.#window(s, now, panicWindowMs)), ...this.#gauges(s, now) };
  }

  #gauges(s: SummedService, now: number) {
    let inFlight = 0, waiting = 0, lastRequestAt = s.createdAt;
    for (const w of s.workers.values()) {
      inFlight += w.inFlight;
      waiting += w.waiting;
      if (w.lastRequestAt > lastRequestAt) lastRequestAt = w.lastRequestAt;
    }
    return {
      inFlight,
      waiting,
      idleMs: inFlight > 0 || waiting > 0 ? 0 : Math.max(0, now - lastRequestAt),
      recordingMs: now - s.createdAt,
    };
  }

  /** Fills the service's WindowSum with the last `windowMs`; returns the span it covers. */
  #window(s: SummedService, now: number, windowMs: number): number {
    const whole = wholeSecondsOf(s.ringSeconds, windowMs);
    const current = Math.floor(now / SECOND_MS);
    const spanMs = windowSpanMs(whole, now, current, s.createdAt);
    const sum = s.sum.reset();
    for (let k = 0; k <= whole; k++) {
      let inFlightPeak = 0, waitingPeak = 0;
      for (const w of s.workers.values()) {
        const second = w.seconds.get(current - k);
        if (second === undefined) continue;
        sum.add(second);
        inFlightPeak += second.inFlightPeak;
        waitingPeak += second.waitingPeak;
      }
      sum.peaks(inFlightPeak, waitingPeak);
    }
    // A live worker's integrals reach only to its last snapshot: its gauges held since then (until the next one).
    for (const w of s.workers.values()) {
      if (!w.live) continue;
      const heldMs = Math.min(spanMs, Math.max(0, now - w.at));
      sum.inFlightMs += w.inFlight * heldMs;
      sum.waitingMs += w.waiting * heldMs;
    }
    return spanMs;
  }

  /** Seconds that left the ring go; so does an exited worker with none left. */
  #prune(s: SummedService, now: number): void {
    const oldest = Math.floor(now / SECOND_MS) - s.ringSeconds;
    for (const [id, w] of s.workers) {
      for (const second of w.seconds.keys()) if (second <= oldest) w.seconds.delete(second);
      if (!w.live && w.seconds.size === 0) s.workers.delete(id);
    }
  }
}
