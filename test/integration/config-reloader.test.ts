import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { spawnGateway } from '../helpers/gateway-process.js';

// deploy/kubernetes/reload-on-change.mjs, the Kubernetes manifests' config-reloader sidecar, against a real gateway:
// an edit of the mounted file becomes a reload, and an unchanged file none.
const SCRIPT = fileURLToPath(new URL('../../../deploy/kubernetes/reload-on-change.mjs', import.meta.url));

const routes = (path: string) => `listen: 127.0.0.1:0
admin: 127.0.0.1:0
services:
  a: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
routes:
  - { match: { path: ${path} }, service: a }
`;

t.test('the config-reloader reloads the gateway when the routes file changes', async (t) => {
  const gw = await spawnGateway(routes('/one'));
  t.teardown(() => gw.kill());
  const reloader = spawn(process.execPath, [SCRIPT, gw.file, `http://127.0.0.1:${gw.adminPort}`], {
    env: { ...process.env, RELOAD_CHECK_MS: '20' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const said: Record<string, unknown>[] = [];
  createInterface({ input: reloader.stdout }).on('line', (l) => said.push(JSON.parse(l) as Record<string, unknown>));
  t.teardown(async () => { reloader.kill('SIGTERM'); if (reloader.exitCode === null) await once(reloader, 'exit'); });

  await waitFor(() => said.some((l) => l.event === 'watching'), 30_000, 'the reloader watching');
  await gw.rewrite(routes('/two'));
  const reloaded = await gw.waitForLog((l) => l.event === 'reloaded', 30_000);
  t.equal(reloaded.generation, 2);
  await waitFor(() => said.length > 1, 30_000, 'the reloader\'s line');
  t.match(said[1], { event: 'config-changed', status: 200, answer: { result: 'applied', generation: 2 } });
  // A rewrite with the same bytes is no change: the reloader asks nothing.
  await gw.rewrite(routes('/two'));
  await gw.rewrite(routes('/three'));
  await gw.waitForLog((l) => l.event === 'reloaded' && l.generation === 3, 30_000);
  await waitFor(() => said.length > 2, 30_000, 'the reloader\'s second line');
  t.same(said.map((l) => l.event), ['watching', 'config-changed', 'config-changed'], 'one request per change');
  t.same(gw.logs.filter((l) => l.event === 'reload-unchanged'), [], 'none for a file rewritten unchanged');
});
