import type { LoadSource, ServiceSignals, ServiceTotals } from '../signals/load-recorder.js';
import { WindowSum } from '../signals/window-sum.js';

/** Another gateway's latest report of one service, and how old it is. */
export interface RemoteLoad {
  readonly totals: ServiceTotals;
  readonly ageMs: number;
}

/** What the fleet knows of the other gateways' load (gateway/fleet/fleet-member.ts). */
export interface FleetReports {
  /** False while the reports may be incomplete (etcd unreachable, the watch not caught up). */
  complete(): boolean;
  /** The other live gateways' latest reports of `service` (never this gateway's own: its live view counts instead). */
  remote(service: string): Iterable<RemoteLoad>;
}

/**
 * The load a fleet's leader decides on: its own live signals plus every other live gateway's last report. A report
 * is a window's additive sums, so the sum is exact up to the report's age (one interval); a window that covers a
 * different span than the leader's counts at its rate. A gateway whose lease expired has no report, so it is out of
 * the sum at once; one key per gateway means none counts twice.
 *
 * Missing reports are not missing load: while they may be incomplete the windows count as not yet full (the policy
 * never scales down then) and the service is never idle, so the leader can still scale up on what it sees.
 */
export class FleetLoad implements LoadSource {
  readonly #stable = new WindowSum();
  readonly #panic = new WindowSum();

  constructor(private readonly own: LoadSource, private readonly reports: FleetReports) {}

  configure(service: string, stableWindowMs: number): void {
    this.own.configure(service, stableWindowMs);
  }

  retain(services: ReadonlySet<string>): void {
    this.own.retain(services);
  }

  /** This gateway's own load (what it reports to the others). */
  totals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceTotals {
    return this.own.totals(service, stableWindowMs, panicWindowMs);
  }

  signals(service: string, stableWindowMs: number, panicWindowMs: number): ServiceSignals {
    const own = this.own.totals(service, stableWindowMs, panicWindowMs);
    const stable = this.#stable.reset();
    const panic = this.#panic.reset();
    stable.addTotals(own.stable, 1);
    panic.addTotals(own.panic, 1);
    let { inFlight, waiting, idleMs } = own;
    for (const r of this.reports.remote(service)) {
      stable.addTotals(r.totals.stable, own.stable.spanMs / Math.max(1, r.totals.stable.spanMs));
      panic.addTotals(r.totals.panic, own.panic.spanMs / Math.max(1, r.totals.panic.spanMs));
      inFlight += r.totals.inFlight;
      waiting += r.totals.waiting;
      idleMs = Math.min(idleMs, r.totals.idleMs + r.ageMs);
    }
    const complete = this.reports.complete();
    return {
      stable: stable.signals(own.stable.spanMs, stableWindowMs),
      panic: panic.signals(own.panic.spanMs, panicWindowMs),
      inFlight,
      waiting,
      idleMs: complete ? idleMs : 0,
      recordingMs: complete ? own.recordingMs : 0,
    };
  }
}
