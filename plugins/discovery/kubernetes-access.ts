import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { TlsMaterial } from './http-json.js';

/** How to reach and authenticate to the API server: from the pod's service account or from a kubeconfig. */
export interface KubernetesAccess {
  readonly server: string;
  readonly tls: TlsMaterial;
  /** Read at each request: projected service-account tokens rotate (about hourly) and so may a token file. */
  headers(): Record<string, string>;
  /** The namespace the credentials point at, used when the options name none. */
  readonly namespace: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the mounted token, CA and namespace. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubernetesAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set (use auth: kubeconfig)');
  const tokenFile = `${dir}/token`;
  readFileSync(tokenFile);   // fail now, with the path, rather than at the first request
  let namespace = 'default';
  try { namespace = readFileSync(`${dir}/namespace`, 'utf8').trim() || 'default'; } catch { /* optional */ }
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tls: { ca: readFileSync(`${dir}/ca.crt`) },
    headers: () => ({ authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` }),
    namespace,
  };
}

interface Named<T> { name: string; [key: string]: unknown; cluster?: T; user?: T; context?: T }

/**
 * From a kubeconfig: the context (named, or current-context), its cluster's server and CA, and its user's token,
 * token file, client certificate or basic credentials. Exec and auth-provider plugins are refused with a clear
 * message: they run programs, which a gateway config should not do behind an operator's back.
 */
export function kubeconfigAccess(file: string, contextName?: string): KubernetesAccess {
  const base = dirname(file);
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
  if (!doc || typeof doc !== 'object') throw new Error(`${file}: not a kubeconfig`);
  const find = <T>(list: unknown, name: string, what: string): T => {
    const found = (Array.isArray(list) ? (list as Named<T>[]) : []).find((x) => x.name === name);
    const inner = found?.[what as 'cluster'];
    if (!inner) throw new Error(`${file}: no ${what} named "${name}"`);
    return inner;
  };
  const ctxName = contextName ?? (doc['current-context'] as string | undefined);
  if (!ctxName) throw new Error(`${file}: no current-context; set the context option`);
  const ctx = find<{ cluster: string; user?: string; namespace?: string }>(doc.contexts, ctxName, 'context');
  const cluster = find<Record<string, unknown>>(doc.clusters, ctx.cluster, 'cluster');
  const user = ctx.user ? find<Record<string, unknown>>(doc.users, ctx.user, 'user') : {};
  const fileOrData = (pathKey: string, dataKey: string): Buffer | undefined => {
    const data = (cluster[dataKey] ?? user[dataKey]) as string | undefined;
    if (data) return Buffer.from(data, 'base64');
    const p = (cluster[pathKey] ?? user[pathKey]) as string | undefined;
    return p ? readFileSync(resolve(base, p)) : undefined;
  };
  if (user.exec || user['auth-provider']) throw new Error(`${file}: user "${ctx.user}" uses an exec or auth-provider plugin; give the gateway a token (a service account) instead`);
  const server = cluster.server as string | undefined;
  if (!server) throw new Error(`${file}: cluster "${ctx.cluster}" has no server`);
  const tls: TlsMaterial = {
    ca: fileOrData('certificate-authority', 'certificate-authority-data'),
    cert: fileOrData('client-certificate', 'client-certificate-data'),
    key: fileOrData('client-key', 'client-key-data'),
    insecureSkipVerify: cluster['insecure-skip-tls-verify'] === true,
  };
  const token = user.token as string | undefined;
  const tokenFile = user.tokenFile as string | undefined;
  const basic = user.username ? `Basic ${Buffer.from(`${user.username as string}:${(user.password as string | undefined) ?? ''}`).toString('base64')}` : undefined;
  return {
    server: server.replace(/\/$/, ''),
    tls,
    headers: (): Record<string, string> => {
      if (token) return { authorization: `Bearer ${token}` };
      if (tokenFile) return { authorization: `Bearer ${readFileSync(resolve(base, tokenFile), 'utf8').trim()}` };
      return basic ? { authorization: basic } : {};
    },
    namespace: ctx.namespace ?? 'default',
  };
}

/** $KUBECONFIG's first file, or ~/.kube/config. */
export function defaultKubeconfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const first = env.KUBECONFIG?.split(process.platform === 'win32' ? ';' : ':').find(Boolean);
  return first ?? resolve(homedir(), '.kube', 'config');
}
