import { readFileSync } from 'node:fs';
import {
  apiUrlSchema, endpointAddress, resolveTlsFiles, schemeSchema, sleep, tlsSchema,
  type DiscoveryPlugin, type DiscoveryUpdate, type Endpoint, type TlsFiles,
} from '../../gateway/plugin-api/index.js';
import { getJson, type TlsMaterial } from './http-json.js';

interface ConsulOptions {
  address: string;
  /** The Consul service name; default the gateway's service name. */
  service?: string;
  tags: string[];
  datacenter?: string;
  token?: string;
  passingOnly: boolean;
  waitS: number;
  minIntervalMs: number;
  scheme: 'http' | 'https';
  tls?: TlsFiles;
}

/** The part of a /v1/health/service entry that the gateway reads. */
export interface ConsulHealthEntry {
  Node: { Node: string; Address: string; Datacenter?: string };
  Service: { ID: string; Service: string; Address?: string; Port: number; Tags?: string[] | null; Meta?: Record<string, string> | null; Weights?: { Passing?: number; Warning?: number } };
  Checks?: { Status: string }[] | null;
}

const clampWeight = (w: number | undefined) => Math.min(1000, Math.max(1, Math.round(w ?? 1)));

/**
 * Endpoints from one health entry each: the service address (or, when the service registered none, the node's),
 * its port, its Consul weight (Weights.Passing, or Weights.Warning for an instance in warning). Critical instances
 * are left out even without `?passing`; instances missing a wanted tag too.
 */
export function consulEndpoints(entries: readonly ConsulHealthEntry[], tags: readonly string[], scheme: 'http' | 'https'): Endpoint[] {
  const out: Endpoint[] = [];
  for (const { Node: node, Service: svc, Checks: checks } of entries) {
    const statuses = (checks ?? []).map((c) => c.Status);
    if (statuses.includes('critical') || statuses.includes('maintenance')) continue;
    if (!tags.every((t) => (svc.Tags ?? []).includes(t))) continue;
    const warning = statuses.includes('warning');
    out.push({
      address: endpointAddress(scheme, svc.Address || node.Address, svc.Port),
      weight: clampWeight(warning ? svc.Weights?.Warning : svc.Weights?.Passing),
      metadata: { ...(svc.Meta ?? {}), node: node.Node, serviceId: svc.ID, ...(node.Datacenter ? { datacenter: node.Datacenter } : {}) },
    });
  }
  return out;
}

/**
 * Endpoints from Consul's health API with blocking queries: each request carries the last X-Consul-Index and a wait,
 * and Consul answers when the service's health changes or the wait ends. Follows Consul's advice for blocking
 * clients: an index that goes backwards (a restored or replaced server) starts over from 0, an index of 0 is treated
 * as 1, and queries are spaced by at least minIntervalMs so a flapping service cannot make a query loop.
 */
export const consulDiscovery: DiscoveryPlugin<ConsulOptions> = {
  kind: 'discovery',
  type: 'consul',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      address: { ...apiUrlSchema, default: 'http://127.0.0.1:8500', description: 'The Consul HTTP API (an agent, usually local).' },
      service: { type: 'string', minLength: 1, description: 'Consul service name; default: the gateway service name.' },
      tags: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true, default: [], description: 'Every tag must be present.' },
      datacenter: { type: 'string', minLength: 1 },
      token: { type: 'string', minLength: 1, description: 'ACL token, sent as X-Consul-Token.' },
      passingOnly: { type: 'boolean', default: true, description: 'Ask for ?passing; otherwise instances in warning count too.' },
      waitS: { type: 'integer', minimum: 1, maximum: 600, default: 55, description: 'Blocking wait of each query.' },
      minIntervalMs: { type: 'integer', minimum: 0, maximum: 60000, default: 250 },
      scheme: schemeSchema,
      tls: tlsSchema,
    },
  },
  create(o, ctx) {
    const files = o.tls && resolveTlsFiles(o.tls, ctx.resolvePath);
    // Read by the first watch: a missing file is then a failed watch (with its path), retried, not a failed reload.
    let tls: TlsMaterial | undefined;
    const readTls = (): TlsMaterial | undefined => files && {
      ca: files.caFile ? readFileSync(files.caFile) : undefined,
      cert: files.certFile ? readFileSync(files.certFile) : undefined,
      key: files.keyFile ? readFileSync(files.keyFile) : undefined,
    };
    const headers: Record<string, string> = o.token ? { 'x-consul-token': o.token } : {};
    // Consul adds up to wait/16 of jitter to a blocking query; allow for it and for a slow network.
    const timeoutMs = o.waitS * 1000 * (17 / 16) + 10_000;
    return {
      async *watch(service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
        const name = o.service ?? service;
        tls ??= readTls();
        let index = 0n;
        let lastQueryAt = 0;
        while (!signal.aborted) {
          const wait = Math.max(0, lastQueryAt + o.minIntervalMs - Date.now());
          if (wait) await sleep(wait, signal);
          lastQueryAt = Date.now();
          const q = new URLSearchParams();
          if (o.passingOnly) q.set('passing', 'true');
          if (o.datacenter) q.set('dc', o.datacenter);
          for (const tag of o.tags) q.append('tag', tag);
          if (index > 0n) { q.set('index', String(index)); q.set('wait', `${o.waitS}s`); }
          const url = `${o.address.replace(/\/$/, '')}/v1/health/service/${encodeURIComponent(name)}?${q}`;
          const { body, headers: h } = await getJson<ConsulHealthEntry[]>(url, { headers, tls, timeoutMs, signal });
          const raw = h['x-consul-index'];
          if (typeof raw !== 'string' || !/^\d+$/.test(raw)) throw new Error(`${name}: Consul answered without a valid X-Consul-Index`);
          const next = BigInt(raw);
          index = next < index ? 0n : next === 0n ? 1n : next;
          if (!Array.isArray(body)) throw new Error(`${name}: Consul answered ${typeof body}, not a list`);
          if (signal.aborted) return;
          // Unchanged answers (the wait ran out) are resets too: core keeps the list and notes the success.
          yield { kind: 'reset', endpoints: consulEndpoints(body, o.tags, o.scheme) };
        }
      },
      async close() {},
    };
  },
};
