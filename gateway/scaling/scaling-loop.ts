import type { Logger } from 'pino';
import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import { SCALER_DISCOVERY_TYPE, type ScalingConfig } from '../config/scaling-config.js';
import { followServices, type LoadSource } from '../signals/load-recorder.js';
import type { Discovery } from '../plugin-api/discovery.js';
import { backoffStepMs } from '../plugin-api/backoff.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { LoadReport, ResourceUsage } from '../plugin-api/scaler.js';
import { DecisionHistory, type ScalingDecisionRecord } from './decision-history.js';
import type { Leadership, ScalingControl, ScalingObserver, ServiceScalingStatus } from './scaling-control.js';
import { decide, INITIAL_STATE, recordScale, type DecisionCause, type PolicyDecision, type PolicyState } from './scale-policy.js';
import { ScalerInstances, type ScalerInstance } from './scaler-instances.js';
import { Schedules } from './schedules.js';

export interface ScalingLoopOptions {
  readonly plugins: PluginRegistry;
  /** The load signals: the gateway's own recorder, or in a cluster primary the sum of the workers'. */
  readonly load: LoadSource;
  readonly log: Logger;
  /** Ready endpoints of a service in the serving config. */
  readonly readyEndpoints: (service: string) => number;
  /** Epoch ms (injectable: tests drive the loop with a fake clock and call `evaluate`). */
  readonly now?: () => number;
  readonly random?: () => number;
  readonly observer?: ScalingObserver;
  /** Decisions kept per service (default 100). */
  readonly historySize?: number;
  /** In a fleet (gateway/fleet/): whether this gateway leads; without it the loop always acts. */
  readonly leadership?: Leadership;
}

/** Thrown in place of a scaler call when this gateway does not lead: no failure, no backoff, the call is not made. */
class NotLeading extends Error {}

/** Causes worth a history entry even when the count does not change, logged once when they start. */
const NOTABLE_HOLDS = new Set<DecisionCause>(['panic', 'stabilized', 'rate-limited', 'missing-signals', 'max']);

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Rejects when `signal` aborts even if `promise` ignores it: a hung orchestrator cannot hold the loop. */
function bounded<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('scaler call aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}

/**
 * Runs one scaler call with a signal that aborts after `ms` (or with `outer`), and stops waiting then even if the
 * scaler does not. Our own timer rather than AbortSignal.timeout, whose unref'd timer would not keep a process up.
 */
function callWithTimeout<T>(ms: number, outer: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${ms} ms`)), ms);
  const onOuter = () => ac.abort(new Error('the scaling loop is closing'));
  outer.addEventListener('abort', onOuter, { once: true });
  if (outer.aborted) onOuter();
  let call: Promise<T>;
  try {
    call = fn(ac.signal);
  } catch (err) {
    call = Promise.reject(err);
  }
  return bounded(call, ac.signal).finally(() => {
    clearTimeout(timer);
    outer.removeEventListener('abort', onOuter);
  });
}

class Controller {
  config!: ScalingConfig;
  schedules!: Schedules;
  instance!: ScalerInstance;
  state: PolicyState = INITIAL_STATE;
  current: number | null = null;
  currentAt = -Infinity;
  desired: number | null = null;
  busy: Promise<void> | null = null;
  again = false;
  failures = 0;
  backoffUntil = 0;
  lastError: string | null = null;
  last: PolicyDecision | null = null;
  lastNotable: DecisionCause | null = null;
  timer: NodeJS.Timeout | undefined;

  constructor(readonly service: string) {}
}

/**
 * The control loop: every `scaling.intervalMs` per scaled service it reads the load signals, asks the pure policy
 * for a replica count, and has the scaler carry it out, with one call in flight per service, a timeout on each call
 * (AbortSignal) and full-jitter backoff after failures. Forwarding never waits on any of it: an orchestrator that
 * is down or slow only delays scaling. State that must survive reloads (the policy's history, the known count) lives
 * here, per service name.
 */
export class ScalingLoop implements ScalingControl {
  readonly #controllers = new Map<string, Controller>();
  readonly #instances: ScalerInstances;
  readonly #abort = new AbortController();
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #history: DecisionHistory;
  #running = false;

  constructor(private readonly o: ScalingLoopOptions) {
    this.#now = o.now ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#history = new DecisionHistory(o.historySize);
    this.#instances = new ScalerInstances(o.plugins, o.log, this.#now);
  }

  /** For the PoolManager: a Discovery over the scaler's own endpoints, for `discovery: { type: scaler }`. */
  scalerEndpoints(s: ServiceConfig): Discovery | undefined {
    if (s.discovery.type !== SCALER_DISCOVERY_TYPE || s.scaling === null) return undefined;
    const { instance, created } = this.#instances.acquire(s.name, s.scaling);
    // A new set of instances (first start, or new scaler options on reload) starts at once at the count in force,
    // so the config can warm before it takes traffic; the loop takes over once the config is applied.
    if (created && this.#leads()) this.#reconcile(instance, s.scaling);
    return this.#instances.discovery(instance);
  }

  #reconcile(instance: ScalerInstance, scaling: ScalingConfig): void {
    const c = this.#controllers.get(instance.service);
    const schedule = new Schedules(scaling.schedules).active(this.#now());
    const count = Math.min(scaling.policy.max, Math.max(c?.current ?? 0, scaling.policy.min, schedule?.min ?? 0));
    if (count === 0) return;
    instance.run(() => callWithTimeout(scaling.callTimeoutMs, this.#abort.signal, (signal) => instance.scaler.scale(instance.service, count, this.#emptyReport(), signal))).then(
      () => this.o.log.info({ event: 'scaler-started', service: instance.service, scaler: instance.type, replicas: count }, `${instance.type} scaler for ${instance.service} started with ${count} replicas`),
      (err: unknown) => this.o.log.warn({ event: 'scaler-start-failed', service: instance.service, err: message(err) }, 'the new scaler could not be brought to the current count; the loop retries'),
    );
  }

  #emptyReport(): LoadReport {
    const empty = { spanMs: 0, windowMs: 0, requests: 0, completed: 0, requestsPerSecond: 0, inFlightMean: 0, inFlightPeak: 0, latencyP50Ms: null, latencyP95Ms: null, latencyP99Ms: null, errorRatio: 0, waitingMean: 0, waitingPeak: 0 };
    return { at: this.#now(), current: null, reason: 'a new scaler instance starts at the count in force', stable: empty, panic: empty, readyEndpoints: 0, waiting: 0, resources: null };
  }

  /** Follows the serving config: new scaled services get a controller, changed ones new settings, dropped ones stop. */
  sync(config: GatewayConfig): void {
    followServices(this.o.load, config);
    for (const s of config.services.values()) {
      if (s.scaling === null) continue;
      let c = this.#controllers.get(s.name);
      if (!c) {
        c = new Controller(s.name);
        this.#controllers.set(s.name, c);
      }
      const key = ScalerInstances.keyOf(s.name, s.scaling);
      if (c.instance?.key !== key) {
        const previous = c.instance;
        try {
          c.instance = this.#instances.acquire(s.name, s.scaling).instance;
        } catch (err) {
          // A plugin that throws while being created must not take the reload (or the gateway) down with it.
          this.o.log.error({ event: 'scaler-create-failed', service: s.name, err: message(err) }, 'cannot create the scaler; the service is not scaled');
          if (!previous) {
            this.#controllers.delete(s.name);
            this.#history.forget(s.name);
          }
          continue;
        }
        // A different orchestrator (or a new set of processes) has its own count: read it before deciding.
        c.current = null;
        c.failures = 0;
        c.backoffUntil = 0;
        if (previous) void this.#instances.release(previous.key);
      }
      c.config = s.scaling;
      c.schedules = new Schedules(s.scaling.schedules);
      if (this.#running) this.#schedule(c);
    }
    for (const [name, c] of this.#controllers) {
      if (config.services.get(name)?.scaling) continue;
      clearTimeout(c.timer);
      this.#controllers.delete(name);
      this.#history.forget(name);
      void this.#instances.release(c.instance.key);
    }
  }

  /** Starts the timers (one per service, unref'd). Tests leave them off and call `evaluate`. */
  start(): void {
    this.#running = true;
    for (const c of this.#controllers.values()) this.#schedule(c);
  }

  #schedule(c: Controller): void {
    clearTimeout(c.timer);
    c.timer = setTimeout(() => {
      void this.evaluate(c.service).finally(() => { if (this.#running && this.#controllers.get(c.service) === c) this.#schedule(c); });
    }, c.config.intervalMs);
    c.timer.unref();
  }

  /** Something needs attention now (a request is waiting for a first endpoint): evaluate without waiting for the tick. */
  wake(service: string): void {
    const c = this.#controllers.get(service);
    if (!c) return;
    if (c.busy) { c.again = true; return; }
    void this.evaluate(service);
  }

  #leads(): boolean {
    return this.o.leadership?.holds() ?? true;
  }

  /** The policy's history of a service, for a fleet's next leader (null when the service is not scaled here). */
  policyState(service: string): PolicyState | null {
    return this.#controllers.get(service)?.state ?? null;
  }

  /**
   * Takes over another gateway's policy history (a fleet's previous leader), so its stabilization window and panic
   * still hold; the count is read afresh from the orchestrator before the next decision.
   */
  adoptPolicyState(service: string, state: PolicyState): void {
    const c = this.#controllers.get(service);
    if (!c) return;
    c.state = state;
    c.current = null;
  }

  /** One evaluation of one service; resolves when its scaler call (if any) is over. Skipped while a call is in flight. */
  evaluate(service: string): Promise<void> {
    const c = this.#controllers.get(service);
    if (!c || this.#abort.signal.aborted) return Promise.resolve();
    if (c.busy) return c.busy;
    if (this.#now() < c.backoffUntil) return Promise.resolve();
    c.busy = this.#evaluate(c).finally(() => {
      c.busy = null;
      if (c.again) { c.again = false; void this.evaluate(service); }
    });
    return c.busy;
  }

  async #evaluate(c: Controller): Promise<void> {
    const { config, instance } = c;
    const scaler = instance.scaler;
    const service = c.service;
    // The timeout starts when the call does, not while it waits behind another call to the same instance.
    // A fleet member that does not lead makes no call; the fence is checked again right before each one, so a leader
    // that lost its lease stops before another gateway can be elected (only a call already in flight overlaps).
    const call = <T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> => instance.run(() => {
      if (!this.#leads()) throw new NotLeading();
      return callWithTimeout(config.callTimeoutMs, this.#abort.signal, fn);
    });
    if (!this.#leads()) {
      // The count may change under another leader: read it afresh once this gateway leads.
      c.current = null;
      return;
    }
    let phase = 'reading the current replica count';
    let decision: PolicyDecision | null = null;
    let report: LoadReport | null = null;
    try {
      if (c.current === null || this.#now() - c.currentAt >= config.syncMs) {
        const current = await call((signal) => scaler.currentReplicas(service, signal));
        if (!Number.isInteger(current) || current < 0) throw new Error(`the scaler reported ${String(current)} replicas`);
        c.current = current;
        c.currentAt = this.#now();
      }
      let resources: ResourceUsage | null = null;
      const t = config.policy.targets;
      if ((t.cpuCores !== undefined || t.memoryMiB !== undefined) && scaler.resources) {
        phase = 'reading resource use';
        // Resource use that cannot be read is "missing", which only blocks scale-down: never an error.
        resources = await call((signal) => scaler.resources!(service, signal)).catch(() => null);
      }
      const now = this.#now();
      const signals = this.o.load.signals(service, config.policy.stableWindowMs, config.panicWindowMs);
      const ready = this.o.readyEndpoints(service);
      const schedule = c.schedules.active(now);
      const current = c.current;
      const result = decide(config.policy, c.state, {
        now, current, ready, stable: signals.stable, panic: signals.panic, inFlight: signals.inFlight, waiting: signals.waiting, idleMs: signals.idleMs,
        recordingMs: signals.recordingMs, resources, scheduleFloor: schedule?.min ?? 0,
        schedule: schedule ? `#${schedule.index} (${schedule.cron})` : undefined,
      });
      c.state = result.state;
      decision = result.decision;
      c.last = decision;
      c.desired = decision.desired;
      report = { at: now, current, reason: decision.reason, stable: signals.stable, panic: signals.panic, readyEndpoints: ready, waiting: signals.waiting, resources };
      this.o.observer?.replicas(service, decision.desired, current);
      // Every evaluation at debug level (off by default; the guard keeps it free then).
      if (this.o.log.isLevelEnabled('debug')) this.o.log.debug({ event: 'scaling-evaluated', service, cause: decision.cause, current, desired: decision.desired, ready }, decision.reason);
      if (decision.desired === current) {
        const notable = NOTABLE_HOLDS.has(decision.cause) ? decision.cause : null;
        if (notable !== null && notable !== c.lastNotable) {
          this.#record(c, decision, report, 'held');
          this.o.log.info({ event: 'scaling-held', service, cause: decision.cause, current, ready }, decision.reason);
        }
        c.lastNotable = notable;
        this.#succeeded(c);
        return;
      }
      c.lastNotable = null;
      phase = `scaling to ${decision.desired}`;
      const desired = decision.desired;
      const load = report;
      await call((signal) => scaler.scale(service, desired, load, signal));
      c.state = recordScale(c.state, now, current, desired);
      c.current = desired;
      this.#record(c, decision, report, 'applied');
      this.o.log.info({ event: 'scaled', service, scaler: instance.type, from: current, to: desired, cause: decision.cause, ready, panic: decision.panic }, decision.reason);
      this.#succeeded(c);
    } catch (err) {
      if (this.#abort.signal.aborted) return;
      if (err instanceof NotLeading) { c.current = null; return; }
      this.#failed(c, err, phase, decision, report);
    }
  }

  #succeeded(c: Controller): void {
    if (c.failures > 0) this.o.log.info({ event: 'scaler-recovered', service: c.service, afterFailures: c.failures }, 'scaler calls succeed again');
    c.failures = 0;
    c.backoffUntil = 0;
    c.lastError = null;
  }

  #failed(c: Controller, err: unknown, phase: string, decision: PolicyDecision | null, report: LoadReport | null): void {
    c.failures++;
    c.lastError = `${phase}: ${message(err)}`;
    // Full jitter: many gateways (or services) retrying a recovering orchestrator spread over the interval.
    const delayMs = Math.round(this.#random() * backoffStepMs(c.failures, c.config.backoff));
    c.backoffUntil = this.#now() + delayMs;
    if (decision !== null && report !== null) this.#record(c, decision, report, 'failed', c.lastError);
    // Log the first failure and then every tenth: an orchestrator that stays down does not flood the log.
    if (c.failures === 1 || c.failures % 10 === 0) {
      this.o.log.warn({ event: 'scaler-failed', service: c.service, scaler: c.instance.type, failures: c.failures, retryInMs: delayMs, err: c.lastError }, `scaler call failed while ${phase}; forwarding is unaffected, retrying later`);
    }
  }

  #record(c: Controller, d: PolicyDecision, load: LoadReport, outcome: ScalingDecisionRecord['outcome'], error?: string): void {
    const record: ScalingDecisionRecord = { ...d, service: c.service, scaler: c.instance.type, outcome, load, ...(error === undefined ? {} : { error }) };
    this.#history.add(record);
    this.o.observer?.scalingDecision(record);
  }

  /** The latest decisions, oldest first: of one service, or of all (merged by time). For the admin API. */
  recentDecisions(service?: string): readonly ScalingDecisionRecord[] {
    return this.#history.recent(service);
  }

  status(): ServiceScalingStatus[] {
    return [...this.#controllers.values()].map((c) => ({
      service: c.service, scaler: c.instance.type, current: c.current, desired: c.desired, ready: this.o.readyEndpoints(c.service),
      min: c.config.policy.min, max: c.config.policy.max, panic: c.state.panicSince !== null,
      lastCause: c.last?.cause ?? null, lastReason: c.last?.reason ?? null, consecutiveFailures: c.failures,
      lastError: c.lastError, backoffUntil: c.backoffUntil,
    }));
  }

  /** Stops the timers, aborts calls in flight and closes every scaler (the process scaler stops its children). */
  async close(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    for (const c of this.#controllers.values()) clearTimeout(c.timer);
    this.#controllers.clear();
    await this.#instances.closeAll();
  }
}
