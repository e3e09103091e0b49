import type { Logger } from 'pino';
import type { FleetConfig, GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import type { Discovery } from '../plugin-api/discovery.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { DecisionHistory, type ScalingDecisionRecord } from '../scaling/decision-history.js';
import type { ScalingControl, ScalingObserver, ServiceScalingStatus } from '../scaling/scaling-control.js';
import { ScalingLoop } from '../scaling/scaling-loop.js';
import type { LoadSource } from '../signals/load-recorder.js';
import { FleetLoad } from './fleet-load.js';
import { FleetMember } from './fleet-member.js';
import type { FleetStatus } from './fleet-status.js';
import { PUBLISHED_DECISIONS, type LeaderState } from './leader-state.js';

/** What the admin API reads of the fleet (`/admin/fleet`, the metrics, the dashboard). */
export interface FleetView {
  fleetStatus(): FleetStatus;
  /** Whether this gateway leads (gantry_fleet_leader). */
  leading(): boolean;
}

export interface FleetScalingOptions {
  readonly fleet: FleetConfig;
  readonly plugins: PluginRegistry;
  /** This gateway's own load (with --workers, the primary's sum of its workers). */
  readonly own: LoadSource;
  readonly log: Logger;
  readonly readyEndpoints: (service: string) => number;
  readonly observer: ScalingObserver;
  readonly version: string;
  /** The serving config's generation, reported with its hash. */
  readonly generation: () => number;
}

/**
 * Autoscaling of a gateway in a fleet (docs/fleet.md): the same ScalingLoop as a lone gateway, fed the fleet's summed
 * load (FleetLoad) and fenced by the fleet's election (FleetMember.holds), so only the leader evaluates and calls
 * scalers. The leader publishes its policy history, status and decisions per service after each evaluation; a
 * follower shows the leader's in its admin API and metrics, and the next leader takes the history over.
 */
export class FleetScaling implements ScalingControl, FleetView {
  readonly member: FleetMember;
  readonly #loop: ScalingLoop;
  readonly #observer: ScalingObserver;
  /** The leader's decisions as this gateway followed them. */
  readonly #followed = new DecisionHistory();
  readonly #publishQueued = new Set<string>();

  constructor(o: FleetScalingOptions) {
    this.#observer = o.observer;
    this.member = new FleetMember({
      config: o.fleet, log: o.log, own: o.own, version: o.version, generation: o.generation,
      listener: {
        elected: (states) => { for (const [service, s] of states) if (s.policy) this.#loop.adoptPolicyState(service, s.policy); },
        remoteWake: (service) => this.#loop.wake(service),
        leaderState: (service, state) => this.#followLeader(service, state),
      },
    });
    this.#loop = new ScalingLoop({
      plugins: o.plugins, load: new FleetLoad(o.own, this.member), log: o.log, readyEndpoints: o.readyEndpoints, leadership: this.member,
      observer: {
        scalingDecision: (record) => { o.observer.scalingDecision(record); this.#publish(record.service); },
        replicas: (service, desired, current) => { o.observer.replicas(service, desired, current); this.#publish(service); },
      },
    });
  }

  /** After the evaluation (one put per service and turn, however many observer calls it made). */
  #publish(service: string): void {
    if (this.#publishQueued.has(service)) return;
    this.#publishQueued.add(service);
    setImmediate(() => {
      this.#publishQueued.delete(service);
      this.member.publish(service, {
        leader: this.member.instance, at: Date.now(), policy: this.#loop.policyState(service),
        status: this.#loop.status().find((s) => s.service === service) ?? null,
        decisions: this.#loop.recentDecisions(service).slice(-PUBLISHED_DECISIONS),
      });
    });
  }

  #followLeader(service: string, state: LeaderState): void {
    if (this.member.holds() || state.leader === this.member.instance) return;
    const known = [...this.#loop.recentDecisions(service), ...this.#followed.recent(service)];
    const seenAt = known.length ? Math.max(...known.map((d) => d.at)) : -Infinity;
    for (const record of state.decisions) {
      if (record.at <= seenAt || record.service !== service) continue;
      this.#followed.add(record);
      this.#observer.scalingDecision(record);
    }
    const st = state.status;
    if (st?.desired != null && st.current != null) this.#observer.replicas(service, st.desired, st.current);
  }

  scalerEndpoints(s: ServiceConfig): Discovery | undefined {
    return this.#loop.scalerEndpoints(s);
  }

  /** A request is held here: the leader (this gateway or another, told by an immediate report) scales from zero. */
  wake(service: string): void {
    this.#loop.wake(service);
    this.member.reportNow();
  }

  sync(config: GatewayConfig): void {
    this.#loop.sync(config);
    const scaled = new Map<string, { stableWindowMs: number; panicWindowMs: number; intervalMs: number }>();
    for (const s of config.services.values()) {
      if (s.scaling) scaled.set(s.name, { stableWindowMs: s.scaling.policy.stableWindowMs, panicWindowMs: s.scaling.panicWindowMs, intervalMs: s.scaling.intervalMs });
    }
    for (const service of [...this.#followed.services()]) if (!scaled.has(service)) this.#followed.forget(service);
    this.member.sync(scaled, config.hash);
  }

  start(): void {
    this.#loop.start();
    this.member.start();
  }

  leading(): boolean {
    return this.member.holds();
  }

  fleetStatus(): FleetStatus {
    return this.member.status();
  }

  status(): ServiceScalingStatus[] {
    if (this.member.holds()) return this.#loop.status();
    return [...this.member.leaderStates().values()].flatMap((s) => (s.status ? [s.status] : []));
  }

  recentDecisions(service?: string): readonly ScalingDecisionRecord[] {
    return [...this.#loop.recentDecisions(service), ...this.#followed.recent(service)].sort((a, b) => a.at - b.at);
  }

  /** Leaves the fleet first (leadership passes at once), then stops the loop and the scalers. */
  async close(): Promise<void> {
    await this.member.close();
    await this.#loop.close();
  }
}
