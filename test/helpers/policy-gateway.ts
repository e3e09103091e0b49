import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { createGateway, type Gateway } from '../../gateway/create-gateway.js';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { captureLog } from './capture-log.js';

export interface PolicyGateway {
  readonly gateway: Gateway;
  /** The data port over IPv4 loopback (the client is 127.0.0.1) and over IPv6 loopback (the client is ::1). */
  readonly url4: string;
  readonly url6: string;
  readonly adminUrl: string;
  readonly dir: string;
  readonly logs: Record<string, unknown>[];
  /** Writes a file beside routes.yaml. */
  write(name: string, text: string): Promise<void>;
  /** Rewrites routes.yaml and reloads; resolves with the reload's result. */
  reload(yaml?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * A gateway in this process listening on `[::]` (so IPv4 and IPv6 loopback clients reach it), its routes file and the
 * files its policies read in one temporary directory, and a log that tests read.
 */
export async function startPolicyGateway(yaml: string, files: Readonly<Record<string, string>> = {}): Promise<PolicyGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-policy-'));
  const file = join(dir, 'routes.yaml');
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  await writeFile(file, yaml);
  const { log, lines: logs } = captureLog();
  const gateway = await createGateway({ configFile: file, plugins: createBuiltinRegistry(), log, listen: { host: '::', port: 0 }, admin: { host: '127.0.0.1', port: 0 } });
  const port = gateway.address().port;
  return {
    gateway, dir, logs, url4: `http://127.0.0.1:${port}`, url6: `http://[::1]:${port}`, adminUrl: `http://127.0.0.1:${gateway.adminAddress()?.port}`,
    write: (name, text) => writeFile(join(dir, name), text),
    reload: async (text) => {
      if (text !== undefined) await writeFile(file, text);
      return (await gateway.reload()).result;
    },
    close: async () => {
      await gateway.shutdown(1000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json(): Record<string, unknown>;
}

/** One request; the answer read whole. */
export async function send(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Answer> {
  const res = await request(url, { method, headers, body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** A metric's value from the admin listener's /metrics (0 when the series is absent). */
export async function metricValue(adminUrl: string, name: string, labels: Readonly<Record<string, string>>): Promise<number> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** routes.yaml with one service `svc` on `upstream`, the given top-level `policies:` block and routes. */
export function policyYaml(upstream: string, policies: string, routes: string, extra = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug }
${extra}policies:
${policies}
services:
  svc:
    discovery: { type: static, endpoints: ["${upstream}"] }
routes:
${routes}`;
}
