import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGateway, type Gateway } from '../../gateway/create-gateway.js';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { captureLog } from './capture-log.js';

export interface GatewayUnderTest {
  readonly gateway: Gateway;
  readonly url: string;
  readonly port: number;
  readonly adminUrl: string;
  readonly file: string;
  /** Every log line as parsed JSON. */
  readonly logs: Record<string, unknown>[];
  rewrite(yaml: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts the gateway in this process on port 0 with `yaml` as its routes file and a log that tests can read. */
export async function startGateway(yaml: string): Promise<GatewayUnderTest> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-test-'));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, yaml);
  const { log, lines: logs } = captureLog();
  const gateway = await createGateway({ configFile: file, plugins: createBuiltinRegistry(), log, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } });
  const port = gateway.address().port;
  return {
    gateway, port, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${gateway.adminAddress()?.port}`, file, logs,
    rewrite: (text) => writeFile(file, text),
    close: async () => {
      await gateway.shutdown(1000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal routes file: one service `svc` with the given static endpoints (JSON is YAML) and whatever routes are passed. */
export function routesYaml(endpoints: (string | { url: string; weight?: number })[], routes = '  - match: { path: / }\n    service: svc\n', serviceExtra = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug }
services:
  svc:
    discovery: { type: static, endpoints: [${endpoints.map((e) => JSON.stringify(e)).join(', ')}] }
${serviceExtra}routes:
${routes}`;
}
