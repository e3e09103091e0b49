import { execFile } from 'node:child_process';

/** users[].user.exec of a kubeconfig, checked (kubeconfig.ts). */
export interface ExecConfig {
  readonly apiVersion: 'client.authentication.k8s.io/v1' | 'client.authentication.k8s.io/v1beta1';
  /** A file name, or a name looked up in PATH. */
  readonly command: string;
  readonly args: readonly string[];
  /** Added to the gateway's environment. */
  readonly env: Readonly<Record<string, string>>;
  readonly provideClusterInfo: boolean;
  readonly installHint?: string;
}

/** The cluster as ExecCredential's spec.cluster describes it, for plugins that ask (provideClusterInfo). */
export interface ExecClusterInfo { readonly server: string; readonly ca?: Buffer; readonly insecureSkipVerify: boolean }

/** What a plugin returned: a bearer token, or a client certificate and key. */
export interface ExecResult { readonly token?: string; readonly cert?: Buffer; readonly key?: Buffer }

/** A plugin that does not answer in this time is killed and the call fails (cloud CLIs answer in seconds). */
const RUN_TIMEOUT_MS = 30_000;

/**
 * A kubeconfig exec credential plugin (the EKS, GKE and AKS logins), run by the ExecCredential protocol
 * (client.authentication.k8s.io/v1): the command gets KUBERNETES_EXEC_INFO (non-interactive, with the cluster when
 * provideClusterInfo) and no stdin, and prints an ExecCredential whose status holds a token or a client certificate
 * and key. The result is kept until its expirationTimestamp (for the gateway's life when it has none, as kubectl)
 * or until the server refuses it (`forget`); callers that arrive together share one run.
 */
export class ExecCredentialPlugin {
  #cached: { result: ExecResult; expiresAtMs: number } | null = null;
  #running: Promise<ExecResult> | null = null;

  constructor(
    private readonly config: ExecConfig,
    private readonly cluster: ExecClusterInfo,
    private readonly env: NodeJS.ProcessEnv,
    private readonly now: () => number = Date.now,
  ) {}

  async credential(signal: AbortSignal): Promise<ExecResult> {
    if (this.#cached && this.now() < this.#cached.expiresAtMs) return this.#cached.result;
    this.#running ??= this.#run(signal).finally(() => { this.#running = null; });
    return this.#running;
  }

  forget(): void {
    this.#cached = null;
  }

  async #run(signal: AbortSignal): Promise<ExecResult> {
    const c = this.config;
    const spec: Record<string, unknown> = { interactive: false };
    if (c.provideClusterInfo) {
      spec.cluster = {
        server: this.cluster.server,
        ...(this.cluster.ca ? { 'certificate-authority-data': this.cluster.ca.toString('base64') } : {}),
        ...(this.cluster.insecureSkipVerify ? { 'insecure-skip-tls-verify': true } : {}),
      };
    }
    const info = JSON.stringify({ apiVersion: c.apiVersion, kind: 'ExecCredential', spec });
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = execFile(c.command, [...c.args], {
        env: { ...this.env, ...c.env, KUBERNETES_EXEC_INFO: info }, timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL',
        signal, maxBuffer: 1024 * 1024, encoding: 'utf8',
      }, (err, out, errText) => {
        if (!err) return resolve(out);
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        const hint = e.code === 'ENOENT' && c.installHint ? `; ${c.installHint.trim()}` : '';
        const why = e.code === 'ENOENT' ? 'not found' : e.killed ? `killed (no answer in ${RUN_TIMEOUT_MS} ms or cancelled)` : `failed: ${e.message.split('\n')[0]}`;
        reject(new Error(`exec credential plugin ${c.command} ${why}${errText.trim() ? `: ${errText.trim().slice(-300)}` : ''}${hint}`, { cause: err }));
      });
      child.stdin?.end();
    });
    const result = this.#parse(stdout);
    this.#cached = result;
    return result.result;
  }

  #parse(stdout: string): { result: ExecResult; expiresAtMs: number } {
    const fail = (why: string) => new Error(`exec credential plugin ${this.config.command}: ${why}`);
    let cred: { apiVersion?: unknown; kind?: unknown; status?: Record<string, unknown> };
    try { cred = JSON.parse(stdout) as typeof cred; } catch { throw fail(`printed no JSON ExecCredential: ${stdout.trim().slice(0, 120)}`); }
    if (cred?.kind !== 'ExecCredential') throw fail(`printed kind ${JSON.stringify(cred?.kind)}, not ExecCredential`);
    if (cred.apiVersion !== this.config.apiVersion) throw fail(`answered apiVersion ${JSON.stringify(cred.apiVersion)}, asked ${this.config.apiVersion}`);
    const s = cred.status ?? {};
    const expiry = s.expirationTimestamp;
    let expiresAtMs = Infinity;
    if (expiry !== undefined && expiry !== null) {
      expiresAtMs = typeof expiry === 'string' ? Date.parse(expiry) : NaN;
      if (Number.isNaN(expiresAtMs)) throw fail(`status.expirationTimestamp ${JSON.stringify(expiry)} is not an RFC 3339 time`);
    }
    if (typeof s.token === 'string' && s.token) return { result: { token: s.token }, expiresAtMs };
    if (typeof s.clientCertificateData === 'string' && typeof s.clientKeyData === 'string' && s.clientCertificateData && s.clientKeyData) {
      return { result: { cert: Buffer.from(s.clientCertificateData), key: Buffer.from(s.clientKeyData) }, expiresAtMs };
    }
    throw fail('status has neither a token nor clientCertificateData and clientKeyData');
  }
}
