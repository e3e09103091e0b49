import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the Kubernetes API server (not a real one): just the scale subresource of Deployments and
 * StatefulSets, with bearer-token authentication, as `kubectl scale` and the HPA controller use it.
 */
export interface KubeApiStandIn {
  readonly url: string;
  /** `namespace/kind/name` → spec.replicas */
  readonly workloads: Map<string, number>;
  readonly requests: { method: string; path: string; contentType?: string; body: string; authorization?: string }[];
  hang: boolean;
  close(): Promise<void>;
}

const SCALE = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|statefulsets)\/([^/]+)\/scale$/;

export async function startKubeApiStandIn(token: string): Promise<KubeApiStandIn> {
  const workloads = new Map<string, number>();
  const requests: KubeApiStandIn['requests'] = [];
  const sockets = new Set<import('node:net').Socket>();
  const state = { hang: false };
  const status = (res: http.ServerResponse, code: number, reason: string, message: string) =>
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0] as string;
      requests.push({ method: req.method ?? '', path, contentType: req.headers['content-type'], body, authorization: req.headers.authorization });
      if (state.hang) return;
      if (req.headers.authorization !== `Bearer ${token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
      const m = SCALE.exec(path);
      if (!m) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
      const [, ns, resource, name] = m as unknown as [string, string, string, string];
      const key = `${ns}/${resource}/${name}`;
      if (!workloads.has(key)) return status(res, 404, 'NotFound', `${resource}.apps "${name}" not found`);
      if (req.method === 'PATCH') {
        if (req.headers['content-type'] !== 'application/merge-patch+json') return status(res, 415, 'UnsupportedMediaType', 'the body of the request was in an unknown format');
        const replicas = (JSON.parse(body) as { spec?: { replicas?: number } }).spec?.replicas;
        if (typeof replicas !== 'number') return status(res, 422, 'Invalid', 'spec.replicas is required');
        workloads.set(key, replicas);
      } else if (req.method !== 'GET') {
        return status(res, 405, 'MethodNotAllowed', 'method not allowed');
      }
      const replicas = workloads.get(key) as number;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name, namespace: ns },
        spec: replicas === 0 ? {} : { replicas }, status: { replicas, selector: `app=${name}` },
      }));
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, workloads, requests,
    get hang() { return state.hang; },
    set hang(v: boolean) { state.hang = v; },
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
