import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { spawnGateway, workersReady, type GatewayProcess } from '../helpers/gateway-process.js';
import { getOnNewConnection as get } from '../helpers/get-new-connection.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const PLUGIN = fileURLToPath(new URL('../fixtures/misbehaving-discovery.js', import.meta.url));

/** A gateway whose one service is discovered by the misbehaving plugin, which fails on cue when `trigger` is written. */
function config(upstream: string, trigger: string): string {
  return `listen: 127.0.0.1:0
admin: null
plugins: [${JSON.stringify(PLUGIN)}]
services:
  svc: { discovery: { type: misbehaving, endpoints: ["${upstream}"], trigger: "${trigger}" } }
routes:
  - { match: { path: / }, service: svc }
`;
}

/** The exit, or 'still running' if the process has not exited `ms` after it was asked to fail. */
function exitWithin(gw: GatewayProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  return Promise.race([gw.exited, new Promise<'still running'>((r) => { setTimeout(r, ms, 'still running').unref(); })]);
}

for (const [how, event] of [['throw', 'uncaught-exception'], ['reject', 'unhandled-rejection']] as const) {
  t.test(`one process: an ${event.replace('-', ' ')} in a plugin is logged, the gateway drains and exits 1`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-fatal-'));
    const up = await startRecordingUpstream();
    const trigger = join(dir, 'trigger');
    const gw = await spawnGateway(config(up.url, trigger));
    t.teardown(async () => { await gw.kill(); await up.close(); await rm(dir, { recursive: true, force: true }); });
    t.equal((await get(gw.port, '/')).status, 200);

    await writeFile(trigger, how);
    t.match(await gw.waitForLog((l) => l.event === event), { level: 'fatal', err: { message: /misbehaving plugin/ } }, 'the error is logged');
    // The drain has nothing in flight: well within the bound (drainGraceMs + 5 s).
    t.same(await exitWithin(gw, 20_000), { code: 1, signal: null }, 'drained and exited 1, for its supervisor to restart it');
    t.ok(gw.logs.some((l) => l.event === 'draining'), 'it drained first');
  });
}

t.test('workers: an uncaught exception ends that worker (exit 1) and the primary starts another; in the primary it drains every worker and exits 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-fatal-'));
  const up = await startRecordingUpstream();
  const trigger = join(dir, 'trigger');
  const gw = await spawnGateway(config(up.url, trigger), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); await rm(dir, { recursive: true, force: true }); });
  await workersReady(gw, 2);

  // Both workers watch the trigger: either or both may throw, and either may be the first to exit.
  await writeFile(trigger, 'throw');
  const exit = await gw.waitForLog((l) => l.event === 'worker-exit');
  t.equal(exit.code, 1, 'a worker exited 1');
  t.ok(gw.logs.some((l) => l.event === 'uncaught-exception' && l.level === 'fatal' && l.worker === exit.worker), 'after logging its uncaught exception');
  await workersReady(gw, 3);
  t.pass('the primary started a worker in its place');
  t.equal((await get(gw.port, '/')).status, 200);

  const from = gw.logs.length;
  await writeFile(`${trigger}.primary`, 'throw');
  t.match(await gw.waitForLog((l) => l.event === 'uncaught-exception' && l.worker === undefined), { level: 'fatal' }, 'the primary logged its own');
  t.same(await exitWithin(gw, 20_000), { code: 1, signal: null }, 'the primary drained the workers and exited 1');
  t.equal(gw.logs.slice(from).filter((l) => l.event === 'stopped' && l.worker !== undefined).length, 2, 'both workers drained');
});
