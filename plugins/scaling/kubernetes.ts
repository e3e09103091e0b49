import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { ScalerPlugin } from '../../gateway/plugin-api/index.js';

interface KubernetesOptions {
  kind: 'Deployment' | 'StatefulSet';
  /** Workload name; {service} is replaced by the service name. */
  name: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  /** Overrides the API server URL (and then no kubeconfig or in-cluster config is needed). */
  apiServer?: string;
  tokenFile?: string;
  timeoutMs: number;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How to reach and authenticate to the API server, resolved once when the scaler starts. */
export interface ApiAccess {
  readonly server: string;
  readonly namespace: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecure: boolean;
  /** Read per call: service-account tokens are rotated on disk. */
  readonly token: () => string | undefined;
}

type Named<T> = { name: string } & T;
interface KubeConfig {
  'current-context'?: string;
  clusters?: Named<{ cluster: { server: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string; 'insecure-skip-tls-verify'?: boolean } }>[];
  users?: Named<{ user: { token?: string; tokenFile?: string; 'client-certificate'?: string; 'client-certificate-data'?: string; 'client-key'?: string; 'client-key-data'?: string; exec?: unknown } }>[];
  contexts?: Named<{ context: { cluster: string; user: string; namespace?: string } }>[];
}

function fileOrData(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (file) return readFileSync(file);
  return undefined;
}

/** The API server and credentials: explicit apiServer, else in-cluster service account, else kubeconfig. */
export function resolveAccess(o: KubernetesOptions, env: NodeJS.ProcessEnv = process.env): ApiAccess {
  const tokenFrom = (file: string | undefined, inline?: string) => () => (file ? readFileSync(file, 'utf8').trim() : inline);
  if (o.apiServer) {
    return { server: o.apiServer.replace(/\/$/, ''), namespace: o.namespace ?? 'default', insecure: false, token: tokenFrom(o.tokenFile) };
  }
  const kubeconfigPath = o.kubeconfig ?? (env.KUBERNETES_SERVICE_HOST ? undefined : (env.KUBECONFIG?.split(':')[0] ?? join(homedir(), '.kube', 'config')));
  if (kubeconfigPath === undefined) {
    const host = env.KUBERNETES_SERVICE_HOST as string;
    const h = host.includes(':') ? `[${host}]` : host;
    let namespace = o.namespace;
    if (!namespace) { try { namespace = readFileSync(join(SA_DIR, 'namespace'), 'utf8').trim(); } catch { namespace = 'default'; } }
    return {
      server: `https://${h}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`, namespace, ca: readFileSync(join(SA_DIR, 'ca.crt')), insecure: false,
      token: tokenFrom(o.tokenFile ?? join(SA_DIR, 'token')),
    };
  }
  const config = parse(readFileSync(kubeconfigPath, 'utf8')) as KubeConfig;
  const contextName = o.context ?? config['current-context'];
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`kubeconfig ${kubeconfigPath}: no context "${contextName ?? ''}"`);
  const cluster = config.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) throw new Error(`kubeconfig ${kubeconfigPath}: no cluster "${context.cluster}"`);
  const user = config.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user.exec) throw new Error(`kubeconfig ${kubeconfigPath}: exec credential plugins are not supported; use a token or client certificate`);
  return {
    server: cluster.server.replace(/\/$/, ''), namespace: o.namespace ?? context.namespace ?? 'default',
    ca: fileOrData(cluster['certificate-authority'], cluster['certificate-authority-data']),
    cert: fileOrData(user['client-certificate'], user['client-certificate-data']),
    key: fileOrData(user['client-key'], user['client-key-data']),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    token: tokenFrom(o.tokenFile ?? user.tokenFile, user.token),
  };
}

function request(access: ApiAccess, method: string, path: string, body: string | undefined, timeoutMs: number, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const url = new URL(access.server + path);
    const token = access.token();
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'gantry-scaler' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) { headers['content-type'] = 'application/merge-patch+json'; headers['content-length'] = String(Buffer.byteLength(body)); }
    const options: https.RequestOptions = {
      method, headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      ca: access.ca, cert: access.cert, key: access.key, rejectUnauthorized: !access.insecure, agent: false,
    };
    const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let parsed: unknown = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        if (status >= 200 && status < 300) return resolve(parsed);
        const reason = (parsed as { message?: string } | null)?.message ?? text.slice(0, 200);
        reject(new Error(`${method} ${url.pathname}: HTTP ${status}${reason ? `: ${reason}` : ''}`));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Scales a Deployment or StatefulSet through its scale subresource (GET and merge-PATCH of
 * /apis/apps/v1/namespaces/NS/deployments/NAME/scale), with the pod's service account when in a cluster or a
 * kubeconfig (token or client certificate) outside. The service account needs get and patch on
 * deployments/scale (or statefulsets/scale).
 */
export const kubernetesScaler: ScalerPlugin<KubernetesOptions> = {
  kind: 'scaler',
  type: 'kubernetes',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      kind: { enum: ['Deployment', 'StatefulSet'], default: 'Deployment' },
      name: { type: 'string', pattern: '^([a-z0-9]([-a-z0-9.]*[a-z0-9])?|[a-z0-9-]*\\{service\\}[a-z0-9-]*)$', default: '{service}' },
      namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
      kubeconfig: { type: 'string', minLength: 1 },
      context: { type: 'string', minLength: 1 },
      apiServer: { type: 'string', pattern: '^https?://' },
      tokenFile: { type: 'string', minLength: 1 },
      timeoutMs: { type: 'integer', minimum: 100, default: 5000 },
    },
  },
  create(options) {
    // Resolved at the first call, so a missing kubeconfig is a failed call (retried with backoff), not a crash.
    let resolved: ApiAccess | undefined;
    const access = () => (resolved ??= resolveAccess(options));
    const resource = options.kind === 'Deployment' ? 'deployments' : 'statefulsets';
    const pathOf = (service: string) => {
      // Service names allow "_" and upper case; Kubernetes names do not.
      const name = options.name.replace('{service}', service.toLowerCase().replace(/[^a-z0-9.-]/g, '-'));
      return `/apis/apps/v1/namespaces/${encodeURIComponent(access().namespace)}/${resource}/${encodeURIComponent(name)}/scale`;
    };
    return {
      async currentReplicas(service, signal) {
        const scale = await request(access(), 'GET', pathOf(service), undefined, options.timeoutMs, signal) as { spec?: { replicas?: unknown } };
        const n = scale?.spec?.replicas ?? 0;   // an omitted spec.replicas is 0 in a Scale object
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`unexpected scale object: spec.replicas = ${JSON.stringify(n)}`);
        return n;
      },
      async scale(service, desired, _load, signal) {
        await request(access(), 'PATCH', pathOf(service), JSON.stringify({ spec: { replicas: desired } }), options.timeoutMs, signal);
      },
      async close() {},
    };
  },
};
