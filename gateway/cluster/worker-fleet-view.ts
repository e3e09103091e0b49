import type { FleetView } from '../fleet/fleet-scaling.js';
import type { FleetStatus } from '../fleet/fleet-status.js';
import type { ToWorker } from './messages.js';
import type { PrimaryChannel } from './worker-scaling.js';

/** A cluster worker's view of the fleet: what the primary, the fleet's member, last broadcast (every second). */
export class WorkerFleetView implements FleetView {
  #status: FleetStatus | null = null;
  #leading = false;

  constructor(channel: PrimaryChannel) {
    channel.listen((m: ToWorker) => {
      if (m.type !== 'fleet-status') return;
      this.#status = m.status;
      this.#leading = m.leading;
    });
  }

  fleetStatus(): FleetStatus {
    return this.#status ?? { name: '', self: null, leader: null, connected: false, leaseRemainingMs: null, gateways: [], configMismatch: [] };
  }

  leading(): boolean {
    return this.#leading;
  }
}
