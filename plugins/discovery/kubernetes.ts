import {
  endpointAddress, schemeSchema, UpdateQueue, type DiscoveryPlugin, type DiscoveryUpdate, type Endpoint,
} from '../../gateway/plugin-api/index.js';
import { getJson, HttpStatusError, streamJsonLines } from './http-json.js';
import { kubernetesAccess, SERVICE_ACCOUNT_DIR, type KubernetesAccess } from '../kubernetes/api-access.js';

interface KubernetesOptions {
  /** The Service whose EndpointSlices are read; default the gateway's service name. */
  service?: string;
  namespace?: string;
  /** The port's name in the slices, or its number; needed when the Service has several ports. */
  port?: string | number;
  scheme: 'http' | 'https';
  auth?: 'in-cluster' | 'kubeconfig';
  kubeconfig?: string;
  context?: string;
  serviceAccountDir: string;
  watchTimeoutS: number;
  requestTimeoutMs: number;
}

/** The fields of a discovery.k8s.io/v1 EndpointSlice the gateway reads. */
export interface EndpointSlice {
  metadata: { name: string; resourceVersion?: string };
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  ports?: { name?: string; port?: number; protocol?: string }[] | null;
  endpoints?: {
    addresses: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    nodeName?: string; zone?: string; targetRef?: { kind?: string; name?: string };
  }[] | null;
}

interface WatchEvent { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: EndpointSlice & { code?: number; message?: string } }

/** One slice's endpoints at the wanted port, by condition. */
export interface SliceEndpoints {
  readonly ready: readonly Endpoint[];
  /** Not ready, but still serving while their pods terminate (a rollout, a scale-down). */
  readonly servingTerminating: readonly Endpoint[];
}

const NONE: SliceEndpoints = { ready: [], servingTerminating: [] };

/**
 * The endpoints of one slice at the wanted port, as kube-proxy reads the conditions: `ready` and `serving` unset
 * mean true, `terminating` unset means false (the API's documented meanings). A slice whose ports do not include the
 * wanted one (or, with no port option, has several) throws: the mistake is in the config, and the status should
 * say so.
 */
export function sliceEndpoints(slice: EndpointSlice, port: string | number | undefined, scheme: 'http' | 'https'): SliceEndpoints {
  const ports = (slice.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  if (!slice.endpoints?.length) return NONE;
  let chosen: number | undefined;
  if (port === undefined) {
    if (ports.length !== 1) throw new Error(`EndpointSlice ${slice.metadata.name} has ${ports.length} TCP ports (${ports.map((p) => p.name ?? p.port).join(', ')}); set the port option to one name`);
    chosen = ports[0]?.port;
  } else {
    chosen = ports.find((p) => (typeof port === 'number' ? p.port === port : p.name === port))?.port;
    if (chosen === undefined) throw new Error(`EndpointSlice ${slice.metadata.name} has no TCP port ${JSON.stringify(port)} (it has ${ports.map((p) => p.name || p.port).join(', ') || 'none'})`);
  }
  if (chosen === undefined) return NONE;   // a port without a number: the Service selects no pods yet
  const ready: Endpoint[] = [];
  const servingTerminating: Endpoint[] = [];
  for (const e of slice.endpoints) {
    const c = e.conditions;
    const into = c?.ready !== false ? ready : c.serving !== false && c.terminating === true ? servingTerminating : null;
    if (!into) continue;
    for (const address of e.addresses) {
      const metadata: Record<string, string> = {};
      if (e.nodeName) metadata.node = e.nodeName;
      if (e.zone) metadata.zone = e.zone;
      if (e.targetRef?.name) metadata.pod = e.targetRef.name;
      into.push({ address: endpointAddress(scheme, address, chosen), weight: 1, metadata });
    }
  }
  return { ready, servingTerminating };
}

/**
 * A Service's endpoints over all its slices, by kube-proxy's rule: the ready ones; when none is ready, those still
 * serving while terminating. Why: when every pod of a rollout is terminating at once, dropping them all would
 * answer 503 while they can still serve (their connections drain through the preStop/grace period).
 */
export function serviceEndpoints(slices: Iterable<SliceEndpoints>): Endpoint[] {
  const all = [...slices];
  const ready = all.flatMap((s) => s.ready);
  return ready.length ? ready : all.flatMap((s) => s.servingTerminating);
}

/**
 * Endpoints of a Kubernetes Service from its EndpointSlices (discovery.k8s.io/v1), by list then watch: the list
 * gives a resourceVersion, the watch streams changes after it, and when the server closes the watch (its timeout),
 * watching resumes from the last version seen (bookmarks keep it fresh). A 410 Gone means that version was
 * compacted away: the slices are listed again. Any other failure ends the watch; core keeps the endpoints and
 * retries with backoff.
 */
export const kubernetesDiscovery: DiscoveryPlugin<KubernetesOptions> = {
  kind: 'discovery',
  type: 'kubernetes',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      service: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
      namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
      port: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'integer', minimum: 1, maximum: 65535 }] },
      scheme: schemeSchema,
      auth: { enum: ['in-cluster', 'kubeconfig'], description: 'Default: a named kubeconfig, else in-cluster when KUBERNETES_SERVICE_HOST is set, else ~/.kube/config.' },
      kubeconfig: { type: 'string', minLength: 1, description: "Default: $KUBECONFIG; relative to the routes file's directory." },
      context: { type: 'string', minLength: 1 },
      serviceAccountDir: { type: 'string', minLength: 1, default: SERVICE_ACCOUNT_DIR },
      watchTimeoutS: { type: 'integer', minimum: 1, maximum: 3600, default: 300 },
      requestTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000, default: 10000 },
    },
  },
  check(o) {
    if (o.auth === 'in-cluster' && (o.kubeconfig || o.context)) return [[['auth'], 'kubeconfig and context apply to auth: kubeconfig only']];
    return [];
  },
  create(o, ctx) {
    let access: KubernetesAccess | null = null;
    // The kubeconfig is read by the first watch: a missing or broken one is a failed watch (retried), not a failed reload.
    const connect = (): KubernetesAccess => kubernetesAccess({
      auth: o.auth, kubeconfig: o.kubeconfig && ctx.resolvePath(o.kubeconfig), context: o.context, serviceAccountDir: ctx.resolvePath(o.serviceAccountDir),
    });
    return {
      async *watch(service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
        access ??= connect();
        const a = access;
        const namespace = o.namespace ?? a.namespace;
        const name = o.service ?? service;
        const base = `${a.server}/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${name}`)}`;
        const request = async (timeoutMs: number) => ({ ...(await a.credentials(signal)), timeoutMs, signal });
        // A refused credential (an expired exec token) is dropped, so the re-watch gets a fresh one.
        const refused = (err: unknown): never => {
          if (err instanceof HttpStatusError && err.status === 401) a.rejected();
          throw err;
        };
        const slices = new Map<string, SliceEndpoints>();
        const current = () => serviceEndpoints(slices.values());

        while (!signal.aborted) {
          const { body: list } = await getJson<{ metadata: { resourceVersion: string }; items: EndpointSlice[] }>(base, await request(o.requestTimeoutMs)).catch(refused);
          slices.clear();
          for (const s of list.items) slices.set(s.metadata.name, sliceEndpoints(s, o.port, o.scheme));
          let version = list.metadata.resourceVersion;
          yield { kind: 'reset', endpoints: current() };

          let gone = false;
          while (!signal.aborted && !gone) {
            const queue = new UpdateQueue<DiscoveryUpdate>();
            const url = `${base}&watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(version)}&timeoutSeconds=${o.watchTimeoutS}`;
            // Each event that changes a slice is one reset of the whole set: slices overlap, core diffs.
            const options = await request(o.watchTimeoutS * 1000 + o.requestTimeoutMs);
            streamJsonLines(url, options, (raw) => {
              const ev = raw as WatchEvent;
              if (ev.type === 'ERROR') {
                if (ev.object.code === 410) gone = true;
                else queue.fail(new Error(`watch error ${ev.object.code ?? ''}: ${ev.object.message ?? 'unknown'}`));
                return;
              }
              if (ev.object?.metadata?.resourceVersion) version = ev.object.metadata.resourceVersion;
              if (ev.type === 'BOOKMARK') return;
              try {
                if (ev.type === 'DELETED') slices.delete(ev.object.metadata.name);
                else slices.set(ev.object.metadata.name, sliceEndpoints(ev.object, o.port, o.scheme));
                queue.push({ kind: 'reset', endpoints: current() });
              } catch (err) {
                queue.fail(err);
              }
            }).then(
              () => queue.end(),   // the server's timeout: watch again from `version`, no new list
              (err: unknown) => {
                if (err instanceof HttpStatusError && err.status === 410) { gone = true; queue.end(); return; }
                if (err instanceof HttpStatusError && err.status === 401) a.rejected();
                queue.fail(err);
              },
            );
            yield* queue;
          }
          if (gone) ctx.log.info({ service: name, namespace }, 'resourceVersion expired (410 Gone); listing EndpointSlices again');
        }
      },
      async close() {},
    };
  },
};
