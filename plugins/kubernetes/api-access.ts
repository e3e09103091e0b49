import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TlsMaterial } from '../discovery/http-json.js';
import { kubeconfigAccess } from './kubeconfig.js';
import type { KubernetesAccess } from './kubernetes-access.js';

export type { KubernetesAccess, KubernetesCredentials } from './kubernetes-access.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface AccessOptions {
  /** Default: a kubeconfig when one is named (option or $KUBECONFIG), else in-cluster when in a pod, else ~/.kube/config. */
  readonly auth?: 'in-cluster' | 'kubeconfig';
  /** Already resolved against the routes file's directory. */
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly serviceAccountDir: string;
}

/** kubectl's choice of credentials, shared by the discovery plugin and the scaler. Throws with the file and reason. */
export function kubernetesAccess(o: AccessOptions, env: NodeJS.ProcessEnv = process.env): KubernetesAccess {
  const named = o.kubeconfig ?? firstKubeconfig(env);
  const inCluster = o.auth === 'in-cluster' || (o.auth === undefined && named === undefined && Boolean(env.KUBERNETES_SERVICE_HOST));
  if (inCluster) return inClusterAccess(env, o.serviceAccountDir);
  return kubeconfigAccess(named ?? join(homedir(), '.kube', 'config'), o.context, env);
}

/** $KUBECONFIG's first file (kubectl merges the list; the gateway reads the first). */
function firstKubeconfig(env: NodeJS.ProcessEnv): string | undefined {
  return env.KUBECONFIG?.split(process.platform === 'win32' ? ';' : ':').find(Boolean);
}

/** In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the mounted token, CA and namespace. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubernetesAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set (use a kubeconfig)');
  const tokenFile = join(dir, 'token');
  readFileSync(tokenFile);   // fail now, with the path, rather than at the first request
  let namespace = 'default';
  try { namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || 'default'; } catch { /* optional */ }
  const tls: TlsMaterial = { ca: readFileSync(join(dir, 'ca.crt')) };
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    namespace,
    credentials: async () => ({ headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` }, tls }),
    rejected() {},
  };
}

/** The same access with the bearer token read from `tokenFile` at each call instead. */
export function withTokenFile(access: KubernetesAccess, tokenFile: string): KubernetesAccess {
  return {
    ...access,
    credentials: async (signal) => {
      const c = await access.credentials(signal);
      return { tls: c.tls, headers: { ...c.headers, authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } };
    },
  };
}
