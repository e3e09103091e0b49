import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import { followServices } from '../signals/load-recorder.js';
import type { Discovery, DiscoveryUpdate, Endpoint } from '../plugin-api/discovery.js';
import type { ScalingControl, ScalingDeps } from '../scaling/scaling-control.js';
import { SCALER_DISCOVERY_TYPE } from '../config/scaling-config.js';
import { DecisionHistory, type ScalingDecisionRecord } from '../scaling/decision-history.js';
import type { ServiceScalingStatus } from '../scaling/scaling-control.js';
import { PoolManager } from '../upstream/pool-manager.js';
import type { ToPrimary, ToWorker } from './messages.js';

/** How often a worker ships its load to the primary: the primary's windows lag the workers by at most this. */
export const LOAD_SHIPMENT_INTERVAL_MS = 500;
const SECOND_MS = 1000;

/** The worker's end of the IPC channel to the primary. */
export interface PrimaryChannel {
  send(message: ToPrimary): void;
  /** Subscribes to the primary's messages; returns an unsubscribe. */
  listen(listener: (message: ToWorker) => void): () => void;
}

/**
 * A cluster worker's side of autoscaling; the primary runs the only scaling loop (primary-scaling.ts).
 * - The load recorder records as it does in one process (the same hot path); every LOAD_SHIPMENT_INTERVAL_MS its
 *   seconds since the last shipment (the current one again, as it grew), its gauges and the ready endpoint counts of
 *   the scaled services go to the primary, which sums the workers.
 * - A request held for a first endpoint ships the load at once with a wake, so the primary evaluates now and sees it.
 * - `discovery: { type: scaler }` pools get the endpoint sets the primary broadcasts from the scaler it runs.
 * - The primary's decisions and replica counts come back into this worker's metrics (/metrics and the dashboard's
 *   replica chart), into `status()`, and into `recentDecisions()`, which /admin/scaling reads: every worker shows the same.
 * Nothing here calls a scaler.
 */
export class WorkerScaling implements ScalingControl {
  readonly #sets = new Map<string, readonly Endpoint[]>();
  readonly #changed = new Set<() => void>();
  readonly #history = new DecisionHistory();
  readonly #wakes = new Set<string>();
  readonly #unlisten: () => void;
  readonly #status = new Map<string, ServiceScalingStatus>();
  #scaled: readonly string[] = [];
  #fromSecond = -Infinity;
  #timer: NodeJS.Timeout | undefined;
  #wakeScheduled = false;
  #closed = false;

  constructor(private readonly deps: ScalingDeps, private readonly channel: PrimaryChannel) {
    this.#unlisten = channel.listen((m) => this.#receive(m));
  }

  #receive(m: ToWorker): void {
    switch (m.type) {
      case 'scaler-endpoints':
        if (m.endpoints === null) this.#sets.delete(m.key); else this.#sets.set(m.key, m.endpoints);
        for (const notify of [...this.#changed]) notify();
        break;
      case 'scaling-decision':
        this.deps.observer.scalingDecision(m.record);
        this.#history.add(m.record);
        break;
      case 'scaling-replicas':
        this.deps.observer.replicas(m.service, m.desired, m.current);
        if (m.status) this.#status.set(m.service, m.status);
        break;
    }
  }

  scalerEndpoints(s: ServiceConfig): Discovery | undefined {
    if (s.discovery.type !== SCALER_DISCOVERY_TYPE || s.scaling === null) return undefined;
    const key = PoolManager.keyOf(s);
    this.channel.send({ type: 'scaler-endpoints-watch', key });
    let closed = false;
    return {
      watch: (_service, signal) => this.#watch(key, signal),
      close: async () => {
        if (closed) return;
        closed = true;
        this.channel.send({ type: 'scaler-endpoints-unwatch', key });
      },
    };
  }

  /** The primary's sets for one pool key, each as a reset; the first once the primary has one (its instances started). */
  async *#watch(key: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
    let seen: readonly Endpoint[] | undefined;
    while (!signal.aborted) {
      const set = this.#sets.get(key);
      if (set !== undefined && set !== seen) {
        seen = set;
        yield { kind: 'reset', endpoints: set };
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => { this.#changed.delete(done); signal.removeEventListener('abort', done); resolve(); };
        this.#changed.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  wake(service: string): void {
    this.#wakes.add(service);
    if (this.#wakeScheduled) return;
    // Many requests held at once make one shipment, not one each.
    this.#wakeScheduled = true;
    setImmediate(() => { this.#wakeScheduled = false; this.#ship(); });
  }

  sync(config: GatewayConfig): void {
    followServices(this.deps.load, config);
    this.#scaled = [...config.services.values()].filter((s) => s.scaling !== null).map((s) => s.name);
    const scaled = (service: string) => config.services.get(service)?.scaling;
    for (const service of [...this.#history.services()]) if (!scaled(service)) this.#history.forget(service);
    for (const service of this.#status.keys()) if (!scaled(service)) this.#status.delete(service);
  }

  start(): void {
    this.#timer = setInterval(() => this.#ship(), LOAD_SHIPMENT_INTERVAL_MS);
    this.#timer.unref();
  }

  #ship(): void {
    if (this.#closed) return;
    const { at, services } = this.deps.load.snapshot(this.#fromSecond);
    // The current second is partial: the next shipment sends it again, complete or further along.
    this.#fromSecond = Math.floor(at / SECOND_MS);
    const ready = this.#scaled.map((name) => [name, this.deps.readyEndpoints(name)] as const);
    const wake = [...this.#wakes];
    this.#wakes.clear();
    this.channel.send({ type: 'load', at, services, ready, wake });
  }

  status(): ServiceScalingStatus[] {
    return [...this.#status.values()];
  }

  recentDecisions(service?: string): readonly ScalingDecisionRecord[] {
    return this.#history.recent(service);
  }

  /** The last shipment (what finished while draining counts too), then silence. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#ship();
    this.#closed = true;
    this.#unlisten();
    for (const notify of [...this.#changed]) notify();
  }
}
