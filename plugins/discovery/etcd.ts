import type { Etcd3, IKeyValue } from 'etcd3';
import {
  canonicalAddress, metadataSchema, resolveTlsFiles, schemeSchema, UpdateQueue, weightSchema,
  type DiscoveryPlugin, type DiscoveryUpdate, type Endpoint,
} from '../../gateway/plugin-api/index.js';
import { createEtcdClient, etcdConnectionProperties, loadEtcd3, type EtcdConnection } from '../../gateway/plugin-api/index.js';

interface EtcdOptions extends EtcdConnection {
  /** Keys under this prefix are the endpoints; default `/gantry/services/<service>/`. */
  prefix?: string;
  /** For values written as bare host:port. */
  scheme: 'http' | 'https';
}

export const DEFAULT_PREFIX = '/gantry/services/';

/** The schema of one key's value, for docs and for anyone writing keys by hand. */
export const endpointValueSchema = {
  type: 'object',
  required: ['address'],
  properties: { address: { type: 'string' }, weight: weightSchema, metadata: metadataSchema },
} as const;

/**
 * One key's value: JSON `{ "address": "http://10.0.0.5:8000", "weight": 2, "metadata": { "zone": "a" } }`, or a bare
 * URL / host:port as many registrars write. Throws with a reason on anything else.
 */
export function decodeEndpointValue(value: string, scheme: 'http' | 'https'): Endpoint {
  const text = value.trim();
  if (!text.startsWith('{')) return { address: canonicalAddress(text.includes('://') ? text : `${scheme}://${text}`), weight: 1 };
  const v = JSON.parse(text) as { address?: unknown; weight?: unknown; metadata?: unknown };
  if (typeof v.address !== 'string') throw new Error('"address" must be a string');
  const weight = v.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 1000) throw new Error('"weight" must be an integer from 1 to 1000');
  const address = canonicalAddress(v.address.includes('://') ? v.address : `${scheme}://${v.address}`);
  if (v.metadata === undefined) return { address, weight };
  if (v.metadata === null || typeof v.metadata !== 'object' || Object.values(v.metadata).some((m) => typeof m !== 'string')) {
    throw new Error('"metadata" must map names to strings');
  }
  return { address, weight, metadata: v.metadata as Record<string, string> };
}

export function encodeEndpointValue(e: Endpoint): string {
  return JSON.stringify(e.metadata ? { address: e.address, weight: e.weight, metadata: e.metadata } : { address: e.address, weight: e.weight });
}

/**
 * Endpoints registered in etcd: one key per endpoint under a prefix. Each watch lists the prefix, then watches it
 * from the next revision, so nothing between the two is missed. Any stream failure ends the watch with an error;
 * core keeps the endpoints and re-watches with backoff, and the new watch lists again (as a Kubernetes informer
 * re-lists), which also covers a compacted revision. Keys whose values do not parse are skipped and logged once.
 */
export const etcdDiscovery: DiscoveryPlugin<EtcdOptions> = {
  kind: 'discovery',
  type: 'etcd',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...etcdConnectionProperties,
      prefix: { type: 'string', minLength: 1, description: 'Key prefix; default /gantry/services/<service>/.' },
      scheme: schemeSchema,
    },
  },
  check(o) {
    return o.prefix !== undefined && !o.prefix.endsWith('/') ? [[['prefix'], 'must end with "/" so that /users does not also match /users-admin']] : [];
  },
  create(o, ctx) {
    let client: Etcd3 | null = null;
    const connection: EtcdConnection = o.tls ? { ...o, tls: resolveTlsFiles(o.tls, ctx.resolvePath) } : o;
    const badValues = new Map<string, string>();

    function decode(kv: IKeyValue): Endpoint | null {
      const key = kv.key.toString();
      const value = kv.value.toString();
      try {
        const e = decodeEndpointValue(value, o.scheme);
        badValues.delete(key);
        return e;
      } catch (err) {
        if (badValues.get(key) !== value) {
          badValues.set(key, value);
          ctx.log.warn({ key, err: (err as Error).message }, 'skipping an etcd key whose value is not an endpoint');
        }
        return null;
      }
    }

    return {
      async *watch(service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
        try {
          yield* watchPrefix(service, signal);
        } catch (err) {
          // A fresh client for the next watch: gRPC's own reconnect backoff (1 s growing to 2 min) would otherwise
          // keep failing calls fast long after etcd is back, and core's backoff already paces the attempts.
          client?.close();
          client = null;
          throw err;
        }
      },
      async close() {
        client?.close();
        client = null;
      },
    };

    async function* watchPrefix(service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
      // Loaded before the check, so two watches starting together share one client.
      const lib = await loadEtcd3();
      client ??= createEtcdClient(connection, lib);
      const prefix = o.prefix ?? `${DEFAULT_PREFIX}${service}/`;
      const byKey = new Map<string, Endpoint>();
      const listed = await client.getAll().prefix(prefix).exec();
      for (const kv of listed.kvs) {
        const e = decode(kv);
        if (e) byKey.set(kv.key.toString(), e);
      }
      if (signal.aborted) return;
      yield { kind: 'reset', endpoints: [...byKey.values()] };

      const queue = new UpdateQueue<DiscoveryUpdate>();
      // watcher() rather than create(): listeners are on before it connects, and a failure to connect is reported
      // ('disconnected') instead of create() waiting for a connection that may never come.
      const watcher = client.watch().prefix(prefix).startRevision(String(BigInt(listed.header.revision) + 1n)).watcher();
      // One reset per batch of events: an etcd transaction that moves many keys is one change to the pool.
      watcher.on('data', (res) => {
        if (!res.events.length) return;
        for (const ev of res.events) {
          const key = ev.kv.key.toString();
          const e = ev.type === 'Put' ? decode(ev.kv) : null;
          if (e) byKey.set(key, e); else byKey.delete(key);
        }
        queue.push({ kind: 'reset', endpoints: [...byKey.values()] });
      });
      watcher.on('disconnected', (err) => queue.fail(new Error(`etcd watch disconnected: ${err.message}`)));
      watcher.on('error', (err) => queue.fail(new Error(`etcd watch failed: ${err.message}`)));
      const stop = () => queue.end();
      signal.addEventListener('abort', stop, { once: true });
      try {
        yield* queue;
      } finally {
        signal.removeEventListener('abort', stop);
        watcher.removeAllListeners('data');
        watcher.on('error', () => {});
        // Not awaited: cancelling over a dead connection waits for it, and the re-watch must not.
        void watcher.cancel().catch(() => {});
      }
    }
  },
};
