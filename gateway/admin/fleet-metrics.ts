import { Gauge, type Registry } from 'prom-client';
import type { FleetView } from '../fleet/fleet-scaling.js';

/**
 * The fleet's gauges (docs/fleet.md), read from the FleetView at scrape time. Labelled by fleet name, so a gateway
 * outside any fleet exports no sample of them.
 */
export class FleetMetrics {
  #view: FleetView | null = null;

  constructor(registry: Registry) {
    const view = () => this.#view;
    new Gauge({
      name: 'gantry_fleet_leader', help: '1 while this gateway is its fleet\'s scaling leader (within its lease), else 0.', labelNames: ['fleet'],
      aggregator: 'max', registers: [registry],
      collect() { const v = view(); if (v) this.set({ fleet: v.fleetStatus().name }, v.leading() ? 1 : 0); },
    });
    new Gauge({
      name: 'gantry_fleet_gateways', help: 'Gateways of the fleet with a live load report (this one included).', labelNames: ['fleet'],
      aggregator: 'max', registers: [registry],
      collect() { const v = view(); if (v) { const s = v.fleetStatus(); this.set({ fleet: s.name }, s.gateways.length); } },
    });
    new Gauge({
      name: 'gantry_fleet_report_age_seconds', help: 'Age of the latest load report of each gateway of the fleet.', labelNames: ['fleet', 'instance'],
      aggregator: 'max', registers: [registry],
      collect() {
        this.reset();
        const v = view();
        if (!v) return;
        const s = v.fleetStatus();
        for (const g of s.gateways) this.set({ fleet: s.name, instance: g.instance }, g.reportAgeMs / 1000);
      },
    });
  }

  /** The gateway is in a fleet: its gauges follow this view. */
  follow(view: FleetView): void {
    this.#view = view;
  }
}
