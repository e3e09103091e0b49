import http from 'node:http';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { processesNaming, spawnGateway, workersReady, type GatewayProcess } from '../helpers/gateway-process.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const PLUGIN = fileURLToPath(new URL('../fixtures/misbehaving-discovery.js', import.meta.url));

function config(upstream: string, variant: string, extraServices = ''): string {
  return `listen: 127.0.0.1:0
admin: null
plugins: [${JSON.stringify(PLUGIN)}]
services:
  svc: { discovery: { type: static, endpoints: ["${upstream}"] } }
${extraServices}routes:
  - { name: only-${variant}, match: { path: /only-${variant} }, service: svc }
`;
}

/** A service whose first endpoints reach the worker in slot 1 only after `ms` (a slow warm there). */
const slowInSlot1 = (upstream: string, ms: number) =>
  `  slow: { warmTimeoutMs: 10000, discovery: { type: misbehaving, endpoints: ["${upstream}"], slow: { slot: "1", ms: ${ms} } } }\n`;

function exitWithin(gw: GatewayProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  return Promise.race([gw.exited, new Promise<'still running'>((r) => { setTimeout(r, ms, 'still running').unref(); })]);
}

t.test('with stdout on a pipe whose reader went away, SIGTERM still ends the primary and every worker', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(config(up.url, 'a'), ['--workers', '2']);
  t.teardown(async () => {
    for (const pid of processesNaming(gw.file)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await gw.kill();
    await up.close();
  });
  await workersReady(gw, 2);
  gw.child.stdout!.destroy();   // as `gantry start --workers 2 | tee log` when Ctrl-C ends tee too
  gw.child.kill('SIGTERM');
  // The drain has nothing in flight; the bound is the grace (30 s) plus closing and the log's last lines.
  t.same(await exitWithin(gw, 20_000), { code: 0, signal: null }, 'the primary exited 0');
  t.same(processesNaming(gw.file), [], 'no worker is left behind');
});

t.test('a worker that comes up after a reload run went on without it is replaced at once, not restarted as a crash', async (t) => {
  const up = await startRecordingUpstream();
  // Worker slot 1 warms for 5 s; the run waits 1.5 s for starting workers, then goes on with the other one.
  const gw = await spawnGateway(config(up.url, 'a', slowInSlot1(up.url, 5000)), ['--workers', '2'], { env: { GANTRY_PREPARE_TIMEOUT_MS: '1500' } });
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await gw.waitForLog((l) => l.event === 'fixture-slow-warm');   // slot 1 has its config and is warming it
  await gw.rewrite(config(up.url, 'b', slowInSlot1(up.url, 5000)));
  gw.child.kill('SIGHUP');
  t.same((await gw.waitForLog((l) => l.event === 'cluster-reloaded')).generations, [2], 'the run switched the one ready worker');
  const stale = await gw.waitForLog((l) => l.event === 'worker-stale');
  t.match(await gw.waitForLog((l) => l.event === 'worker-replaced'), { level: 'info', worker: stale.worker, code: 0 }, 'it drained and was replaced');
  await workersReady(gw, 2, 30_000);
  t.equal(gw.logs.filter((l) => l.event === 'worker-exit').length, 0, 'no crash logged, no restart backoff');
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

t.test('a prepare that ends after the primary stopped waiting for it is aborted: its discovery watch stops', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(config(up.url, 'a'), ['--workers', '2'], { env: { GANTRY_PREPARE_TIMEOUT_MS: '2000' } });
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  // The new service warms for 5 s in worker slot 1: the primary stops waiting after 2 s and aborts the run.
  await gw.rewrite(config(up.url, 'b', slowInSlot1(up.url, 5000)));
  gw.child.kill('SIGHUP');
  const refused = await gw.waitForLog((l) => l.event === 'reload-refused' && l.worker === undefined);
  t.match(refused, { refusedBy: 1, workers: 2 }, 'the run failed on the slow worker');
  const stopped = await gw.waitForLog((l) => l.event === 'fixture-watch-stopped' && l.slot === '1');
  t.match(stopped, { service: 'slow' }, 'the late snapshot of the slow worker was released: its discovery watch stopped');
  t.ok(gw.logs.some((l) => l.event === 'reload-prepared-late' && l.worker === stopped.worker), 'and the worker said why');
  t.equal(gw.logs.filter((l) => l.event === 'reloaded').length, 0, 'no worker swapped to it');
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

/** A GET on a new connection: answered, failed (reset, refused), or hung (no answer in 5 s). */
function attempt(port: number): Promise<'answered' | 'failed' | 'hung'> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/only-a', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'answered' : 'failed'));
      res.on('error', () => resolve('failed'));
    });
    req.on('timeout', () => { req.destroy(); resolve('hung'); });
    req.on('error', () => resolve('failed'));
  });
}

t.test('new connections while a worker is killed (SIGKILL): none is left hanging, the other worker takes them', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(config(up.url, 'a'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  const seen = { answered: 0, failed: 0, hung: 0 };
  let stop = false;
  const loops = Array.from({ length: 8 }, async () => { while (!stop) seen[await attempt(gw.port)]++; });
  await waitFor(() => seen.answered >= 100, 20_000, 'traffic');
  process.kill(gw.logs.find((l) => l.event === 'worker-ready')!.pid as number, 'SIGKILL');
  await gw.waitForLog((l) => l.event === 'worker-exit');
  const before = seen.answered;
  await waitFor(() => seen.answered >= before + 100, 20_000, 'traffic after the kill');
  stop = true;
  await Promise.all(loops);
  // The killed worker's own connections are reset; with round-robin one connection handed to it as it died hung.
  t.equal(seen.hung, 0, `${seen.answered} answered, ${seen.failed} reset by the kill, ${seen.hung} hung`);
});
