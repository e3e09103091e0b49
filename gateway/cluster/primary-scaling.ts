import type { Logger } from 'pino';
import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import type { Discovery } from '../plugin-api/discovery.js';
import { SummedLoad } from '../signals/summed-load.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { ScalingLoop } from '../scaling/scaling-loop.js';
import type { ScalingControl, ScalingObserver } from '../scaling/scaling-control.js';
import { FleetScaling } from '../fleet/fleet-scaling.js';
import { gantryVersion } from '../version.js';
import type { ToPrimary, ToWorker } from './messages.js';
import { ScalerEndpointFeeds } from './scaler-endpoint-feeds.js';

/** A worker as the primary's scaling sees it. */
export interface WorkerPeer {
  readonly id: number;
  send(message: ToWorker): void;
}

/** A config being rolled out to the workers: `commit` once they all switched to it, `abort` if they did not. */
export interface PreparedScaling {
  commit(): void;
  abort(): void;
}

/**
 * The cluster primary's side of autoscaling: the only ScalingLoop of the cluster, reading the sum of the workers'
 * load (SummedLoad) and following the config the primary validated and rolled out. The scaler's own endpoints
 * (process scaler) go to every worker (ScalerEndpointFeeds); each decision and every evaluation's replica counts go
 * to every worker too, so any worker's admin API and metrics show the primary's scaling. Workers never call a
 * scaler; their side is worker-scaling.ts.
 */
export class PrimaryScaling {
  readonly load = new SummedLoad();
  #loop!: ScalingControl;
  #fleetTimer: NodeJS.Timeout | undefined;
  readonly #feeds: ScalerEndpointFeeds;
  readonly #log: Logger;
  #config: GatewayConfig | undefined;
  #generation = 0;

  constructor(private readonly plugins: PluginRegistry, log: Logger, private readonly workers: () => Iterable<WorkerPeer>) {
    this.#log = log;
    this.#feeds = new ScalerEndpointFeeds((s) => this.#loop.scalerEndpoints(s), (key, endpoints) => this.#broadcast({ type: 'scaler-endpoints', key, endpoints }), log);
  }

  /** The cluster's one loop: alone, or in a fleet the fleet's (reporting the workers' sum, acting while it leads). */
  #createLoop(config: GatewayConfig): ScalingControl {
    const observer: ScalingObserver = {
      scalingDecision: (record) => this.#broadcast({ type: 'scaling-decision', record }),
      replicas: (service, desired, current) => {
        const status = this.#loop.status().find((s) => s.service === service);
        this.#broadcast({ type: 'scaling-replicas', service, desired, current, status });
      },
    };
    const readyEndpoints = (service: string) => this.load.readyEndpoints(service);
    if (!config.fleet) return new ScalingLoop({ plugins: this.plugins, load: this.load, log: this.#log, readyEndpoints, observer });
    const fleet = new FleetScaling({
      fleet: config.fleet, plugins: this.plugins, own: this.load, log: this.#log, readyEndpoints, observer,
      version: gantryVersion(), generation: () => this.#generation,
    });
    // The workers answer /admin/fleet and the fleet's gauges from what the primary last told them.
    this.#fleetTimer = setInterval(() => this.#broadcast({ type: 'fleet-status', status: fleet.fleetStatus(), leading: fleet.leading() }), 1000);
    this.#fleetTimer.unref();
    return fleet;
  }

  #broadcast(message: ToWorker): void {
    for (const w of this.workers()) w.send(message);
  }

  /** Before the workers fork: the scalers of `config` start at their floor, the loop begins. Throws if a scaler cannot start. */
  start(config: GatewayConfig): void {
    this.#loop = this.#createLoop(config);
    this.#feeds.acquire(config);
    this.#follow(config);
    this.#loop.start();
  }

  /** Before the workers prepare `config`: new scaler-fed services get their instances, so the workers can warm on them. */
  prepare(config: GatewayConfig): PreparedScaling {
    this.#feeds.acquire(config);
    let settled = false;
    return {
      commit: () => {
        if (settled) return;
        settled = true;
        const previous = this.#config;
        this.#follow(config);
        if (previous) this.#feeds.release(previous);
      },
      abort: () => {
        if (settled) return;
        settled = true;
        this.#feeds.release(config);
      },
    };
  }

  #follow(config: GatewayConfig): void {
    if (this.#config !== undefined && this.#config !== config) this.#generation++;
    else if (this.#config === undefined) this.#generation = 1;
    this.#config = config;
    this.#log.level = config.log.level;
    this.#loop.sync(config);
  }

  /** A Discovery over a scaler's own endpoints (`discovery: { type: scaler }`), for the primary's health checks. */
  scalerEndpoints(s: ServiceConfig): Discovery | undefined {
    return this.#loop.scalerEndpoints(s);
  }

  /** Handles the scaling messages of a worker; returns false for the others. */
  receive(worker: WorkerPeer, m: ToPrimary): boolean {
    switch (m.type) {
      case 'load':
        this.load.receive(worker.id, m.at, m.services, new Map(m.ready));
        for (const service of m.wake) this.#loop.wake(service);
        return true;
      case 'scaler-endpoints-watch':
        this.#feeds.watch(worker.id, m.key, (endpoints) => worker.send({ type: 'scaler-endpoints', key: m.key, endpoints }));
        return true;
      case 'scaler-endpoints-unwatch':
        this.#feeds.unwatch(worker.id, m.key);
        return true;
      default:
        return false;
    }
  }

  /** A worker is up: it gets the loop's decisions so far (its admin API shows the same history as the others). */
  workerReady(worker: WorkerPeer): void {
    for (const record of this.#loop.recentDecisions()) worker.send({ type: 'scaling-decision', record });
  }

  /** A worker exited: its load stops counting in the gauges, its pools' hold on scaler endpoints is gone. */
  workerExited(id: number): void {
    this.load.dropWorker(id);
    this.#feeds.workerGone(id);
  }

  /** After every worker drained: stops the loop and the scalers (the process scaler stops its instances gracefully). */
  async close(): Promise<void> {
    clearInterval(this.#fleetTimer);
    await this.#feeds.closeAll();
    await this.#loop.close();
  }
}
