import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { TlsMaterial } from '../discovery/http-json.js';
import type { KubernetesAccess, KubernetesCredentials } from './kubernetes-access.js';
import { ExecCredentialPlugin, type ExecConfig } from './exec-credential.js';

type Fields = Record<string, unknown>;

/**
 * From a kubeconfig, by kubectl's rules: the context (named, or current-context), its cluster (server,
 * certificate-authority(-data), insecure-skip-tls-verify) and its user (client-certificate(-data) and
 * client-key(-data), token or tokenFile, basic credentials, or an exec credential plugin). `-data` wins over the
 * file; relative file names (and an exec command with a slash) are relative to the kubeconfig's directory.
 * auth-provider users are refused: kubectl itself replaced the cloud providers by exec plugins.
 */
export function kubeconfigAccess(file: string, contextName: string | undefined, env: NodeJS.ProcessEnv = process.env): KubernetesAccess {
  const base = dirname(file);
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!doc || typeof doc !== 'object') throw new Error(`kubeconfig ${file}: not a kubeconfig`);
  const d = doc as Fields;
  const find = (list: string, name: string, what: string): Fields => {
    const entry = (Array.isArray(d[list]) ? (d[list] as Fields[]) : []).find((x) => x?.name === name);
    const inner = entry?.[what];
    if (!inner || typeof inner !== 'object') throw new Error(`kubeconfig ${file}: no ${what} "${name}"`);
    return inner as Fields;
  };
  const ctxName = contextName ?? (d['current-context'] as string | undefined);
  if (!ctxName) throw new Error(`kubeconfig ${file}: no current-context; set the context option`);
  const ctx = find('contexts', ctxName, 'context');
  const cluster = find('clusters', String(ctx.cluster), 'cluster');
  const user = typeof ctx.user === 'string' && ctx.user ? find('users', ctx.user, 'user') : {};
  const where = `kubeconfig ${file}: user "${String(ctx.user)}"`;
  if (user['auth-provider']) throw new Error(`${where} uses an auth-provider, which the gateway does not run; use an exec credential plugin or a token`);

  const fileOrData = (from: Fields, pathKey: string): Buffer | undefined => {
    const data = from[`${pathKey}-data`];
    if (typeof data === 'string' && data) return Buffer.from(data, 'base64');
    const p = from[pathKey];
    return typeof p === 'string' && p ? readFileSync(at(p)) : undefined;
  };
  const server = cluster.server;
  if (typeof server !== 'string' || !server) throw new Error(`kubeconfig ${file}: cluster "${String(ctx.cluster)}" has no server`);
  const ca = fileOrData(cluster, 'certificate-authority');
  const insecureSkipVerify = cluster['insecure-skip-tls-verify'] === true;
  const tls: TlsMaterial = { ca, cert: fileOrData(user, 'client-certificate'), key: fileOrData(user, 'client-key'), insecureSkipVerify };

  const token = typeof user.token === 'string' && user.token ? user.token : undefined;
  const tokenFile = typeof user.tokenFile === 'string' && user.tokenFile ? at(user.tokenFile) : undefined;
  const basic = typeof user.username === 'string' && user.username
    ? `Basic ${Buffer.from(`${user.username}:${typeof user.password === 'string' ? user.password : ''}`).toString('base64')}` : undefined;
  const exec = user.exec
    ? new ExecCredentialPlugin(execConfig(user.exec, where, at), { server, ca, insecureSkipVerify }, env)
    : undefined;

  return {
    server: server.replace(/\/$/, ''),
    namespace: typeof ctx.namespace === 'string' && ctx.namespace ? ctx.namespace : 'default',
    async credentials(signal): Promise<KubernetesCredentials> {
      // A token file is read per call (kubectl re-reads it too); a static token and basic credentials never change.
      if (tokenFile) return { tls, headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } };
      if (token) return { tls, headers: { authorization: `Bearer ${token}` } };
      if (exec) {
        const c = await exec.credential(signal);
        return c.token !== undefined
          ? { tls, headers: { authorization: `Bearer ${c.token}` } }
          : { tls: { ...tls, cert: c.cert, key: c.key }, headers: {} };
      }
      return { tls, headers: basic ? { authorization: basic } : {} };
    },
    rejected: () => exec?.forget(),
  };
}

/** users[].user.exec, checked when the kubeconfig is read (a wrong apiVersion fails there, not at each call). */
function execConfig(raw: unknown, where: string, at: (p: string) => string): ExecConfig {
  const e = raw as Fields;
  const apiVersion = e.apiVersion;
  if (apiVersion !== 'client.authentication.k8s.io/v1' && apiVersion !== 'client.authentication.k8s.io/v1beta1') {
    throw new Error(`${where}: exec apiVersion ${JSON.stringify(apiVersion)} is not supported (client.authentication.k8s.io/v1 or v1beta1)`);
  }
  if (typeof e.command !== 'string' || !e.command) throw new Error(`${where}: exec has no command`);
  if (e.interactiveMode === 'Always') throw new Error(`${where}: exec interactiveMode Always needs a terminal, which the gateway does not have`);
  const args = Array.isArray(e.args) ? e.args.map(String) : [];
  const envList = Array.isArray(e.env) ? (e.env as { name?: unknown; value?: unknown }[]) : [];
  return {
    apiVersion,
    // kubectl: a command with a path separator is a file next to the kubeconfig; a bare name is looked up in PATH.
    command: e.command.includes('/') ? at(e.command) : e.command,
    args,
    env: Object.fromEntries(envList.map((v) => [String(v.name), String(v.value ?? '')])),
    provideClusterInfo: e.provideClusterInfo === true,
    installHint: typeof e.installHint === 'string' ? e.installHint : undefined,
  };
}
