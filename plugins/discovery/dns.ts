import { getServers, promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import NodeCache from 'node-cache';
import {
  endpointAddress, schemeSchema, sleep, type DiscoveryPlugin, type DiscoveryUpdate, type Endpoint,
} from '../../gateway/plugin-api/index.js';
import { parseDnsServer, querySrv, type DnsServer, type SrvRecord } from './dns-srv-query.js';

type AddressRecord = 'A' | 'AAAA' | 'A+AAAA';

interface DnsOptions {
  name: string;
  record: AddressRecord | 'SRV';
  port?: number;
  targetRecord: AddressRecord;
  scheme: 'http' | 'https';
  servers?: string[];
  minTtlS: number;
  maxTtlS: number;
  timeoutMs: number;
  tries: number;
}

interface Resolved { readonly addresses: readonly string[]; readonly ttlS: number }

const SERVER_PATTERN = '^(\\[[0-9a-fA-F:.]+\\](:[0-9]{1,5})?|[0-9.]+(:[0-9]{1,5})?|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$';

/** The TTL the gateway lives by: the record's, held inside [minTtlS, maxTtlS] (a TTL of 0 would mean a query loop). */
export function clampTtl(ttlS: number, minTtlS: number, maxTtlS: number): number {
  return Math.min(maxTtlS, Math.max(minTtlS, ttlS));
}

/**
 * Of the SRV records, the lowest priority whose targets resolve (RFC 2782: a client must try the lowest priority
 * first; higher ones are fallbacks). Weights become endpoint weights; a weight of 0 counts as 1.
 */
export function srvEndpoints(records: readonly SrvRecord[], resolvedTargets: ReadonlyMap<string, readonly string[]>, scheme: 'http' | 'https'): Endpoint[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  for (const priority of priorities) {
    const endpoints: Endpoint[] = [];
    for (const r of records) {
      if (r.priority !== priority) continue;
      for (const ip of resolvedTargets.get(r.target) ?? []) {
        endpoints.push({
          address: endpointAddress(scheme, ip, r.port), weight: Math.min(1000, Math.max(1, r.weight)),
          metadata: { target: r.target, priority: String(r.priority), srvWeight: String(r.weight) },
        });
      }
    }
    if (endpoints.length) return endpoints;
  }
  return [];
}

/**
 * Endpoints from DNS: A/AAAA records (the port comes from the config) or SRV records (priority, weight and port from
 * each record, targets resolved to addresses). Each answer is kept for its TTL, clamped, then asked again in the
 * background: nothing here runs on the request path. Results are cached with node-cache under their TTLs, so SRV
 * targets shared by several records, or unchanged since the last round, are asked once per TTL.
 *
 * SRV TTLs: Node's resolver drops them, so SRV questions go through a small DNS client of our own
 * (dns-srv-query.ts, UDP with a TCP retry on truncation) that reads each record's TTL.
 */
export const dnsDiscovery: DiscoveryPlugin<DnsOptions> = {
  kind: 'discovery',
  type: 'dns',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\\.?$', maxLength: 253, description: 'A fully qualified name: search domains are not applied.' },
      record: { enum: ['A', 'AAAA', 'A+AAAA', 'SRV'], default: 'A' },
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'The endpoints\' port (A/AAAA only; SRV records carry theirs).' },
      targetRecord: { enum: ['A', 'AAAA', 'A+AAAA'], default: 'A', description: 'How SRV targets resolve to addresses.' },
      scheme: schemeSchema,
      servers: { type: 'array', minItems: 1, items: { type: 'string', pattern: SERVER_PATTERN }, description: 'Resolvers as ip or ip:port ([v6]:port); default: the system\'s.' },
      minTtlS: { type: 'integer', minimum: 1, maximum: 86400, default: 5 },
      maxTtlS: { type: 'integer', minimum: 1, maximum: 86400, default: 300 },
      timeoutMs: { type: 'integer', minimum: 10, maximum: 60000, default: 2000, description: 'Per query and server.' },
      tries: { type: 'integer', minimum: 1, maximum: 10, default: 2 },
    },
  },
  check(o) {
    const problems: [string[], string][] = [];
    if (o.record === 'SRV' && o.port !== undefined) problems.push([['port'], 'SRV records carry their own port; remove port']);
    if (o.record !== 'SRV' && o.port === undefined) problems.push([['record'], `${o.record} records need a port`]);
    if (o.minTtlS > o.maxTtlS) problems.push([['minTtlS'], `must not exceed maxTtlS (${o.maxTtlS})`]);
    for (const [i, s] of (o.servers ?? []).entries()) {
      try { parseDnsServer(s); } catch (err) { problems.push([['servers', String(i)], (err as Error).message]); }
    }
    return problems;
  },
  create(o, ctx) {
    const serverTexts = o.servers ?? getServers();
    const servers: DnsServer[] = serverTexts.map(parseDnsServer);
    const resolver = new dnsPromises.Resolver({ timeout: o.timeoutMs, tries: o.tries });
    resolver.setServers(serverTexts);
    // Values are treated as immutable (no clones); entries expire with their clamped TTL.
    const cache = new NodeCache({ useClones: false, checkperiod: 0 });
    ctx.signal.addEventListener('abort', () => resolver.cancel(), { once: true });

    /** `fresh` skips the cache: the watched name itself is asked each round, its targets only when they expire. */
    async function lookup(type: 'A' | 'AAAA', name: string, fresh: boolean): Promise<Resolved> {
      if (isIP(name)) return { addresses: [name], ttlS: o.maxTtlS };
      const key = `${type} ${name}`;
      const hit = fresh ? undefined : cache.get<Resolved>(key);
      if (hit) return { addresses: hit.addresses, ttlS: Math.max(0, Math.ceil(((cache.getTtl(key) ?? 0) - Date.now()) / 1000)) };
      try {
        const records = type === 'A' ? await resolver.resolve4(name, { ttl: true }) : await resolver.resolve6(name, { ttl: true });
        const resolved = { addresses: records.map((r) => r.address), ttlS: Math.min(...records.map((r) => r.ttl)) };
        cache.set(key, resolved, clampTtl(resolved.ttlS, o.minTtlS, o.maxTtlS));
        return resolved;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EFAIL';
        throw Object.assign(new Error(`${name} ${type}: ${code}`), { code });
      }
    }

    /** A, AAAA or both; with both, one family having no records is fine, neither is an error. */
    async function lookupAddresses(which: AddressRecord, name: string, fresh: boolean): Promise<Resolved> {
      if (which !== 'A+AAAA') return lookup(which, name, fresh);
      const both = await Promise.allSettled([lookup('A', name, fresh), lookup('AAAA', name, fresh)]);
      const ok = both.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      if (!ok.length) throw (both[0] as PromiseRejectedResult).reason;
      return { addresses: ok.flatMap((r) => r.addresses), ttlS: Math.min(...ok.map((r) => r.ttlS)) };
    }

    async function resolveOnce(signal: AbortSignal): Promise<{ endpoints: Endpoint[]; ttlS: number }> {
      if (o.record !== 'SRV') {
        const r = await lookupAddresses(o.record, o.name, true);
        return { endpoints: r.addresses.map((ip) => ({ address: endpointAddress(o.scheme, ip, o.port as number), weight: 1 })), ttlS: r.ttlS };
      }
      let records: SrvRecord[];
      try {
        records = await querySrv(o.name, servers, o, signal);
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'EFAIL';
        throw Object.assign(new Error(`${o.name} SRV: ${code}`), { code });
      }
      const targets = [...new Set(records.map((r) => r.target).filter(Boolean))];
      const resolved = new Map<string, readonly string[]>();
      let ttlS = Math.min(...records.map((r) => r.ttlS));
      const failures: string[] = [];
      await Promise.all(targets.map(async (target) => {
        try {
          const r = await lookupAddresses(o.targetRecord, target, false);
          resolved.set(target, r.addresses);
          ttlS = Math.min(ttlS, r.ttlS);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }));
      const endpoints = srvEndpoints(records, resolved, o.scheme);
      // Targets that fail to resolve are skipped; if every target fails, the source is failing, not empty.
      if (!endpoints.length && targets.length) throw new Error(`${o.name} SRV: no target resolves (${failures.join('; ')})`);
      if (failures.length) ctx.log.debug({ name: o.name, failures }, 'some SRV targets did not resolve');
      return { endpoints, ttlS };
    }

    return {
      async *watch(_service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
        while (!signal.aborted) {
          const { endpoints, ttlS } = await resolveOnce(signal);
          if (signal.aborted) return;
          yield { kind: 'reset', endpoints };
          await sleep(clampTtl(ttlS, o.minTtlS, o.maxTtlS) * 1000, signal);
        }
      },
      async close() {
        resolver.cancel();
        cache.close();
      },
    };
  },
};
