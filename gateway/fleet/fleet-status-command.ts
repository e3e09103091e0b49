import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { loadRoutesFile } from '../config/load-routes-file.js';
import { createEtcdClient, loadEtcd3 } from '../plugin-api/index.js';
import { FLEET_KEYS, fleetPrefix } from './fleet-member.js';
import { fleetStatus, type FleetStatus } from './fleet-status.js';
import { decodeLoadReport, type LoadReport } from './load-report.js';

/** Exit code when the gateways serve different configs: scripts can tell it from an error (1). */
export const CONFIG_MISMATCH_EXIT = 2;

/** The fleet of `file`'s `fleet:` block as etcd has it now: one read of its prefix, no gateway asked. */
export async function readFleetStatus(file: string, plugins: PluginRegistry): Promise<FleetStatus> {
  const config = await loadRoutesFile(file, plugins);
  if (!config.fleet) throw new Error(`${file} has no fleet: block`);
  const { endpoints, ...rest } = config.fleet.etcd;
  const client = createEtcdClient({ hosts: [...endpoints], ...rest } as Parameters<typeof createEtcdClient>[0], await loadEtcd3());
  try {
    const listed = await client.namespace(fleetPrefix(config.fleet.name)).getAll().exec();
    const reports = new Map<string, { report: LoadReport; ageMs: number }>();
    let leader: { rev: bigint; instance: string } | null = null;
    for (const kv of listed.kvs) {
      const key = kv.key.toString();
      if (key.startsWith(FLEET_KEYS.reports)) {
        const report = decodeLoadReport(kv.value.toString());
        // The age by the reporter's clock: this host's may differ a little.
        if (report) reports.set(report.instance, { report, ageMs: Date.now() - report.at });
      } else if (key.startsWith(FLEET_KEYS.election)) {
        const rev = BigInt(kv.create_revision);
        if (leader === null || rev < leader.rev) leader = { rev, instance: kv.value.toString() };
      }
    }
    return fleetStatus({ name: config.fleet.name, self: null, leader: leader?.instance ?? null, connected: true, leaseRemainingMs: null, reports });
  } finally {
    client.close();
  }
}

/** `gantry fleet status`: a table (or JSON) of the fleet's gateways; exit 2 when their configs differ. */
export async function runFleetStatus(file: string, plugins: PluginRegistry, json: boolean, out: (text: string) => void): Promise<number> {
  const s = await readFleetStatus(file, plugins);
  if (json) {
    out(`${JSON.stringify(s, null, 2)}\n`);
    return s.configMismatch.length ? CONFIG_MISMATCH_EXIT : 0;
  }
  const rows = s.gateways.map((g) => [
    g.instance, g.leader ? 'leader' : '', `${g.config.hash.slice(0, 12)}${g.configDiffers ? ' (differs)' : ''}`, String(g.config.generation),
    `${(g.reportAgeMs / 1000).toFixed(1)} s`, g.version,
    Object.entries(g.services).map(([name, l]) => `${name}: ${l.rps} rps, ${l.inFlight} in flight${l.waiting ? `, ${l.waiting} waiting` : ''}`).join('; '),
  ]);
  const table = [['INSTANCE', 'ROLE', 'CONFIG', 'GEN', 'REPORTED', 'VERSION', 'LOAD'], ...rows];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  out(`fleet ${s.name}: ${s.gateways.length} gateway${s.gateways.length === 1 ? '' : 's'}, leader ${s.leader ?? 'none'}\n`);
  for (const r of table) out(`${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  if (s.configMismatch.length) out(`config differs from the ${s.leader ? 'leader\'s' : 'most common'}: ${s.configMismatch.join(', ')}\n`);
  return s.configMismatch.length ? CONFIG_MISMATCH_EXIT : 0;
}
