import http from 'node:http';
import https from 'node:https';
import type { ScalerPlugin } from '../../gateway/plugin-api/index.js';
import { kubernetesAccess, SERVICE_ACCOUNT_DIR, withTokenFile, type KubernetesAccess } from '../kubernetes/api-access.js';

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

/** How to reach the API server: explicit apiServer (with tokenFile), else the kubeconfig or in-cluster rules. */
export function scalerAccess(o: KubernetesOptions, resolvePath: (p: string) => string, env: NodeJS.ProcessEnv = process.env): KubernetesAccess {
  const tokenFile = o.tokenFile === undefined ? undefined : resolvePath(o.tokenFile);
  let access: KubernetesAccess;
  if (o.apiServer) {
    access = { server: o.apiServer.replace(/\/$/, ''), namespace: 'default', credentials: async () => ({ headers: {}, tls: {} }), rejected() {} };
  } else {
    access = kubernetesAccess({ kubeconfig: o.kubeconfig && resolvePath(o.kubeconfig), context: o.context, serviceAccountDir: SERVICE_ACCOUNT_DIR }, env);
  }
  return tokenFile ? withTokenFile(access, tokenFile) : access;
}

async function request(access: KubernetesAccess, method: string, path: string, body: string | undefined, timeoutMs: number, signal: AbortSignal): Promise<unknown> {
  const { headers: auth, tls } = await access.credentials(signal);
  return new Promise((resolve, reject) => {
    const url = new URL(access.server + path);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'gantry-scaler', ...auth };
    if (body !== undefined) { headers['content-type'] = 'application/merge-patch+json'; headers['content-length'] = String(Buffer.byteLength(body)); }
    const options: https.RequestOptions = {
      method, headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecureSkipVerify, agent: false,
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
        if (status === 401) access.rejected();   // an expired exec credential: run the plugin again next time
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
 * kubeconfig outside, read as the discovery plugin reads it (plugins/kubernetes/kubeconfig.ts: token, client
 * certificate or an exec credential plugin). The service account needs get and patch on
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
  create(options, ctx) {
    // Resolved at the first call, so a missing kubeconfig is a failed call (retried with backoff), not a crash.
    let resolved: KubernetesAccess | undefined;
    const access = () => (resolved ??= scalerAccess(options, ctx.resolvePath));
    const resource = options.kind === 'Deployment' ? 'deployments' : 'statefulsets';
    const pathOf = (service: string) => {
      // Service names allow "_" and upper case; Kubernetes names do not.
      const name = options.name.replace('{service}', service.toLowerCase().replace(/[^a-z0-9.-]/g, '-'));
      return `/apis/apps/v1/namespaces/${encodeURIComponent(options.namespace ?? access().namespace)}/${resource}/${encodeURIComponent(name)}/scale`;
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
