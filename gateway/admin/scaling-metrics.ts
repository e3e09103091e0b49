import { Counter, Gauge, type Registry } from 'prom-client';
import type { GatewayConfig } from '../config/gateway-config.js';
import { directionOf, type ScalingDecisionRecord } from '../scaling/decision-history.js';
import type { ScalingObserver } from '../scaling/scaling-control.js';
import { UNKNOWN_SERVICE, type KnownServices } from './label-values.js';
import type { TrafficStats } from './traffic-window.js';

export interface ReplicaCounts {
  readonly service: string;
  readonly desired: number;
  readonly current: number;
  readonly at: number;
}

/**
 * What the scaling loop reports (ScalingObserver): decisions counted by direction, replica counts as gauges, for
 * /admin/scaling and in the dashboard's replica chart. The decisions themselves are the loop's (`recentDecisions`).
 */
export class ScalingMetrics implements ScalingObserver {
  readonly #replicas = new Map<string, ReplicaCounts>();
  readonly #decisionsTotal: Counter<'service' | 'direction'>;
  readonly #desiredReplicas: Gauge<'service'>;
  readonly #currentReplicas: Gauge<'service'>;

  constructor(registry: Registry, private readonly services: KnownServices, private readonly traffic: TrafficStats, private readonly now: () => number) {
    const registers = [registry];
    this.#decisionsTotal = new Counter({ name: 'gantry_scaling_decisions_total', help: 'Scaling decisions, by service and direction (up, down, hold).', labelNames: ['service', 'direction'], aggregator: 'max', registers });
    this.#desiredReplicas = new Gauge({ name: 'gantry_replicas_desired', help: 'Replicas the scaling policy wants, by service.', labelNames: ['service'], aggregator: 'max', registers });
    this.#currentReplicas = new Gauge({ name: 'gantry_replicas_current', help: 'Replicas the scaler reports running, by service.', labelNames: ['service'], aggregator: 'max', registers });
  }

  scalingDecision(record: ScalingDecisionRecord): void {
    this.#decisionsTotal.inc({ service: this.services.label(record.service), direction: directionOf(record) });
  }

  /** The replica counts seen by the scaling loop (every evaluation, not only on a change). */
  replicas(service: string, desired: number, current: number): void {
    const name = this.services.label(service);
    this.#desiredReplicas.set({ service: name }, desired);
    this.#currentReplicas.set({ service: name }, current);
    this.#replicas.set(name, { service: name, desired, current, at: this.now() });
    if (name !== UNKNOWN_SERVICE) this.traffic.window(name).replicas(desired, current);
  }

  /** Services the config no longer has lose their counts. */
  configLoaded(config: GatewayConfig): void {
    for (const service of this.#replicas.keys()) {
      if (!config.services.has(service)) {
        this.#replicas.delete(service);
        this.#desiredReplicas.remove({ service });
        this.#currentReplicas.remove({ service });
      }
    }
  }

  replicaCounts(): readonly ReplicaCounts[] {
    return [...this.#replicas.values()];
  }
}
