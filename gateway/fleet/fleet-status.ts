import { reportedLoad, type LoadReport } from './load-report.js';

/** One gateway of the fleet as /admin/fleet and `gantry fleet status` list it. */
export interface FleetGatewayStatus {
  readonly instance: string;
  readonly self: boolean;
  readonly leader: boolean;
  readonly version: string;
  /** Milliseconds since its report was received (this gateway's own: since it was made). */
  readonly reportAgeMs: number;
  readonly config: { readonly hash: string; readonly generation: number };
  /** Serves a config other than the leader's (or, without a leader, than most gateways'). */
  readonly configDiffers: boolean;
  readonly services: Readonly<Record<string, { rps: number; inFlight: number; waiting: number }>>;
}

export interface FleetStatus {
  readonly name: string;
  /** The gateway answering (null for the CLI, which reads etcd directly). */
  readonly self: string | null;
  readonly leader: string | null;
  /** Whether this gateway's view of etcd is current. */
  readonly connected: boolean;
  /** While this gateway leads: how long its lease surely holds. */
  readonly leaseRemainingMs: number | null;
  readonly gateways: readonly FleetGatewayStatus[];
  /** Gateways serving a config other than the reference one. */
  readonly configMismatch: readonly string[];
}

export interface FleetStatusInput {
  readonly name: string;
  readonly self: string | null;
  readonly leader: string | null;
  readonly connected: boolean;
  readonly leaseRemainingMs: number | null;
  readonly reports: ReadonlyMap<string, { readonly report: LoadReport; readonly ageMs: number }>;
  readonly decisions?: number;
}

/** The fleet's gateways from their reports; the config to compare with is the leader's, else the most common. */
export function fleetStatus(i: FleetStatusInput): FleetStatus {
  const hashes = new Map<string, number>();
  for (const { report } of i.reports.values()) hashes.set(report.config.hash, (hashes.get(report.config.hash) ?? 0) + 1);
  const leaderReport = i.leader === null ? undefined : i.reports.get(i.leader)?.report;
  const reference = leaderReport?.config.hash ?? [...hashes].sort((a, b) => b[1] - a[1])[0]?.[0];
  const gateways = [...i.reports.values()].sort((a, b) => a.report.instance.localeCompare(b.report.instance)).map(({ report, ageMs }) => ({
    instance: report.instance, self: report.instance === i.self, leader: report.instance === i.leader, version: report.version,
    reportAgeMs: Math.max(0, Math.round(ageMs)), config: report.config, configDiffers: reference !== undefined && report.config.hash !== reference,
    services: Object.fromEntries(Object.entries(report.services).map(([name, t]) => [name, reportedLoad(t)])),
  }));
  return {
    name: i.name, self: i.self, leader: i.leader, connected: i.connected, leaseRemainingMs: i.leaseRemainingMs, gateways,
    configMismatch: gateways.filter((g) => g.configDiffers).map((g) => g.instance),
  };
}
