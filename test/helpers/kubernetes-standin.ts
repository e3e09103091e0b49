import http from 'node:http';
import { listenOnLoopback } from './listen-loopback.js';
import type { EndpointSlice } from '../../plugins/discovery/kubernetes.js';

export interface KubernetesStandIn {
  readonly url: string;
  /** Every request's path and query, in order. */
  readonly requests: string[];
  /**
   * Creates or replaces a slice (ADDED or MODIFIED for watchers), with a new resourceVersion. `unseen` keeps the
   * event from open watches, as if their connection had dropped just before it.
   */
  apply(slice: Omit<EndpointSlice, 'metadata'> & { metadata: { name: string } }, service: string, unseen?: boolean): void;
  remove(name: string): void;
  /** Forgets history up to now: a watch from an older resourceVersion gets 410 Gone, as after etcd compaction. */
  compact(): void;
  /** Ends every open watch response, as the API server does at a watch's timeout. */
  endWatches(): void;
  failWith(status: number | null): void;
  close(): Promise<void>;
}

interface Stored { slice: EndpointSlice; service: string }
interface HistoryEvent { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; stored: Stored }

/**
 * A stand-in for the Kubernetes API server's EndpointSlice endpoints (the API server cannot be installed here),
 * speaking the real protocol: GET .../namespaces/NS/endpointslices?labelSelector=kubernetes.io/service-name=SVC lists
 * with metadata.resourceVersion; adding watch=true&resourceVersion=RV streams newline-delimited watch events after
 * RV (an ERROR event with code 410 when RV is older than the kept history), BOOKMARKs when asked, and ends the
 * stream at timeoutSeconds. Requests without the bearer token get 401.
 */
export async function startKubernetesStandIn(token: string, namespace = 'shop'): Promise<KubernetesStandIn> {
  const slices = new Map<string, Stored>();
  const history: HistoryEvent[] = [];
  const requests: string[] = [];
  const watches = new Set<{ service: string; res: http.ServerResponse }>();
  let rv = 100;
  let oldest = rv;
  let failing: number | null = null;

  const send = (res: http.ServerResponse, type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
  const record = (type: HistoryEvent['type'], stored: Stored, unseen = false) => {
    history.push({ rv, type, stored });
    if (!unseen) for (const w of watches) if (w.service === stored.service) send(w.res, type, stored.slice);
  };

  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (failing !== null) { res.writeHead(failing, { 'content-type': 'application/json' }); res.end('{"kind":"Status","message":"etcdserver: request timed out"}'); return; }
    if (req.headers.authorization !== `Bearer ${token}`) { res.writeHead(401); res.end('{"kind":"Status","code":401,"message":"Unauthorized"}'); return; }
    const u = new URL(req.url ?? '/', 'http://k8s');
    if (u.pathname !== `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`) { res.writeHead(404); res.end(); return; }
    const selector = /^kubernetes\.io\/service-name=(.+)$/.exec(u.searchParams.get('labelSelector') ?? '');
    if (!selector) { res.writeHead(400); res.end(); return; }
    const service = selector[1] as string;
    if (u.searchParams.get('watch') !== 'true') {
      const items = [...slices.values()].filter((s) => s.service === service).map((s) => s.slice);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(rv) }, items }));
      return;
    }
    const from = Number(u.searchParams.get('resourceVersion') ?? rv);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (from < oldest) {
      send(res, 'ERROR', { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${from} (${oldest})` });
      res.end();
      return;
    }
    for (const ev of history) if (ev.rv > from && ev.stored.service === service) send(res, ev.type, ev.stored.slice);
    if (u.searchParams.get('allowWatchBookmarks') === 'true') send(res, 'BOOKMARK', { kind: 'EndpointSlice', metadata: { resourceVersion: String(rv) } });
    const w = { service, res };
    watches.add(w);
    const timer = setTimeout(() => res.end(), Number(u.searchParams.get('timeoutSeconds') ?? 1800) * 1000);
    res.once('close', () => { clearTimeout(timer); watches.delete(w); });
  });
  const bound = await listenOnLoopback(server);
  return {
    url: bound.url,
    requests,
    apply: (slice, service, unseen) => {
      rv++;
      const stored = { service, slice: { ...slice, metadata: { ...slice.metadata, resourceVersion: String(rv) } } as EndpointSlice };
      const type = slices.has(slice.metadata.name) ? 'MODIFIED' : 'ADDED';
      slices.set(slice.metadata.name, stored);
      record(type, stored, unseen);
    },
    remove: (name) => {
      const stored = slices.get(name);
      if (!stored) return;
      rv++;
      slices.delete(name);
      record('DELETED', { ...stored, slice: { ...stored.slice, metadata: { ...stored.slice.metadata, resourceVersion: String(rv) } } });
    },
    compact: () => { history.length = 0; oldest = rv; },
    endWatches: () => { for (const w of watches) w.res.end(); },
    failWith: (status) => { failing = status; if (status !== null) bound.destroySockets(); },
    close: () => bound.close(),
  };
}
