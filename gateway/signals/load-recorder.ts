import { performance } from 'node:perf_hooks';
import type { GatewayConfig } from '../config/gateway-config.js';
import type { WindowSignals } from '../plugin-api/scaler.js';
import { ServiceLoad } from './service-load.js';
import type { LoadSecond, WindowTotals } from './window-sum.js';
import { DEFAULT_STABLE_WINDOW_MS, WindowedServices } from './windowed-services.js';

export { DEFAULT_STABLE_WINDOW_MS };
export const DEFAULT_PANIC_WINDOW_MS = 6_000;

/** What the recorder reads of a request (the proxy's Exchange is one; load names no proxy type). */
export interface RecordedExchange {
  /** The matched route, once the request is routed. */
  readonly route: { readonly service: string } | undefined;
  readonly status: number;
  durationMs(): number;
}

/** What the scaling loop reads for one service each tick. */
export interface ServiceSignals {
  readonly stable: WindowSignals;
  readonly panic: WindowSignals;
  readonly inFlight: number;
  readonly waiting: number;
  /** Milliseconds since the last request finished (or since recording began). */
  readonly idleMs: number;
  /** Milliseconds since recording began for this service (the windows are partial before it reaches their length). */
  readonly recordingMs: number;
}

/** ServiceSignals with the windows as additive sums: what a gateway reports to its fleet (gateway/fleet/). */
export interface ServiceTotals {
  readonly stable: WindowTotals;
  readonly panic: WindowTotals;
  readonly inFlight: number;
  readonly waiting: number;
  readonly idleMs: number;
  readonly recordingMs: number;
}

/** What the scaling loop reads and sets: the LoadRecorder in one process, the workers' sum in a cluster primary. */
export interface LoadSource {
  /** Sets the longest window kept for a service; a change starts its history afresh. */
  configure(service: string, stableWindowMs: number): void;
  /** Forgets services no longer configured. */
  retain(services: ReadonlySet<string>): void;
  signals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceSignals;
  /** The same windows as sums that add up across gateways (a fleet report). */
  totals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceTotals;
}

/** Keeps what the config's services need (each its stable window) and forgets the services it dropped. */
export function followServices(load: LoadSource, config: GatewayConfig): void {
  for (const s of config.services.values()) load.configure(s.name, s.scaling?.policy.stableWindowMs ?? DEFAULT_STABLE_WINDOW_MS);
  load.retain(new Set(config.services.keys()));
}

/** One service's load in a cluster worker, as shipped to the primary (gateway/signals/summed-load.ts sums them). */
export interface ServiceLoadSnapshot {
  readonly service: string;
  readonly inFlight: number;
  readonly waiting: number;
  /** Clock reading of the last finished request (or of the first request seen). */
  readonly lastRequestAt: number;
  readonly seconds: readonly LoadSecond[];
}

/**
 * Epoch milliseconds that advance monotonically: the clock cluster workers record by and the primary sums by, so a
 * second means the same second in every process of the machine.
 */
export function sharedClockMs(): number {
  return performance.timeOrigin + performance.now();
}

function gaugesOf(load: ServiceLoad, now: number) {
  return {
    inFlight: load.inFlight,
    waiting: load.waiting,
    idleMs: load.inFlight > 0 || load.waiting > 0 ? 0 : now - load.lastRequestAt,
    recordingMs: now - load.createdAt,
  };
}

/**
 * The gateway's load recorder: fed by the request handler (`routed` when a request is matched to a service,
 * `observe` when it finishes, `waiting` from the scale-from-zero hold), read by the scaling loop. Per request it costs
 * one Map lookup and a few typed-array writes in that service's ServiceLoad; nothing is allocated.
 *
 * Services are recorded from their first request; the scaling loop sets window lengths per service (`configure`).
 */
export class LoadRecorder implements LoadSource {
  readonly #services = new WindowedServices<ServiceLoad>(
    (windowMs) => new ServiceLoad(windowMs, this.now()),
    (from, to) => { to.inFlight = from.inFlight; to.waiting = from.waiting; },
  );

  /** `now`: a monotonic millisecond clock (injectable for tests). */
  constructor(readonly now: () => number = () => performance.now()) {}

  /** Sets the longest window kept for a service; a change starts its history afresh. */
  configure(service: string, stableWindowMs: number): void {
    this.#services.configure(service, stableWindowMs);
  }

  /** Forgets services no longer configured (their in-flight requests finish unrecorded). */
  retain(services: ReadonlySet<string>): void {
    this.#services.retain(services);
  }

  /** A request was matched to a route of `service` (hot path). */
  started(service: string): void {
    this.#services.get(service).started(this.now());
  }

  /** A request of `service` finished (hot path). */
  finished(service: string, durationMs: number, error: boolean): void {
    this.#services.peek(service)?.finished(this.now(), durationMs, error);
  }

  /** HandlerContext.routed: one call per request that matched a route. */
  routed(ex: RecordedExchange): void {
    const route = ex.route;
    if (route !== undefined) this.started(route.service);
  }

  /** HandlerContext.observe: one call per finished exchange; only routed ones were counted in. */
  observe(ex: RecordedExchange): void {
    const route = ex.route;
    if (route === undefined) return;
    const status = ex.status;
    this.finished(route.service, ex.durationMs(), status >= 500);
  }

  /** Requests held for a first endpoint: +1 when one is queued, -1 when it leaves the queue. */
  waiting(service: string, delta: number): void {
    this.#services.get(service).waitingChanged(this.now(), delta);
  }

  /** Every recorded service, with its seconds from `fromSecond` on, taken `at` (cluster workers ship this to the primary). */
  snapshot(fromSecond: number): { at: number; services: ServiceLoadSnapshot[] } {
    const at = this.now();
    const services = [...this.#services.entries()].map(([service, load]) => ({
      service, inFlight: load.inFlight, waiting: load.waiting, lastRequestAt: load.lastRequestAt, seconds: load.seconds(at, fromSecond),
    }));
    return { at, services };
  }

  signals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceSignals {
    const load = this.#services.get(service);
    const now = this.now();
    return { stable: load.window(now, stableWindowMs), panic: load.window(now, panicWindowMs), ...gaugesOf(load, now) };
  }

  totals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceTotals {
    const load = this.#services.get(service);
    const now = this.now();
    return { stable: load.totals(now, stableWindowMs), panic: load.totals(now, panicWindowMs), ...gaugesOf(load, now) };
  }
}
