import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { repeatUntil, spawnGateway, workersReady, type GatewayProcess } from '../helpers/gateway-process.js';
import { getOnNewConnection as get } from '../helpers/get-new-connection.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const INSTANCE = fileURLToPath(new URL('../fixtures/scaling-instance.js', import.meta.url));

/** The parent pid of a process, from /proc: who started it. */
async function parentOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

const accessLines = (gw: GatewayProcess) => gw.logs.filter((l) => l.log === 'access');
const fromWorkers = (lines: Record<string, unknown>[]) => new Set(lines.map((l) => l.worker));

function processScaled(scaling: string): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: info, access: true }
services:
  app:
    discovery: { type: scaler }
    scaling:
      scaler: { type: process, command: [node, ${JSON.stringify(INSTANCE)}], healthIntervalMs: 25, stopGraceMs: 2000, output: ignore, env: { READY_AFTER_MS: "1500" } }
${scaling.split('\n').map((l) => `      ${l}`).join('\n')}
routes:
  - match: { path: / }
    service: app
`;
}

t.test('with two workers only the primary calls the scaler, and the load it reports is the sum of both workers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-workers-scaling-'));
  const calls = join(dir, 'calls.log');
  const decisions = join(dir, 'decisions.jsonl');
  const count = join(dir, 'count');
  await writeFile(count, '1\n');
  const up = await startRecordingUpstream((_req, res) => { res.writeHead(200, { 'content-length': '2' }); res.end('ok'); });
  // Each call writes the pid of the process that ran it ($PPID of the shell); scale also keeps the decision (stdin).
  // No panic and a 3 s scale-up stabilization: the first decision comes after every request has been shipped.
  const gw = await spawnGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: info, access: true }
services:
  svc:
    discovery: { type: static, endpoints: ["${up.url}"] }
    scaling:
      scaler:
        type: exec
        scale: 'echo "$PPID scale {replicas}" >> ${calls}; cat >> ${decisions}; echo >> ${decisions}; echo {replicas} > ${count}'
        current: 'echo "$PPID current" >> ${calls}; cat ${count}'
      min: 1
      max: 5
      target: { rps: 2 }
      panicThreshold: 0
      scaleUp: { stabilizationWindowMs: 3000 }
      intervalMs: 250
      syncMs: 1000
routes:
  - match: { path: / }
    service: svc
`, ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); await rm(dir, { recursive: true, force: true }); });
  await workersReady(gw, 2);

  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => get(gw.port, `/r${i}`)));
  // A burst of new connections can land on one worker (the kernel spreads them): more, one at a time, until both served.
  await repeatUntil(async () => results.push(await get(gw.port, `/r${results.length}`)), () => fromWorkers(accessLines(gw)).size === 2);
  const sent = results.length;
  t.equal(results.filter((r) => r.status === 200).length, sent, 'every request answered');
  t.same([...fromWorkers(accessLines(gw))].sort(), [1, 2], 'both workers served traffic');

  const first = await waitFor(async () => {
    const text = await readFile(decisions, 'utf8').catch(() => '');
    const line = text.split('\n').find((l) => l.trim());
    return line === undefined ? undefined : JSON.parse(line) as { desired: number; current: number; load: { stable: { requests: number; completed: number }; readyEndpoints: number } };
  }, 20_000, 'a scale decision', 100);
  t.equal(first.load.stable.requests, sent, `the scaler saw ${sent} requests: the sum over the workers, not one worker's share`);
  t.equal(first.load.stable.completed, sent);
  t.equal(first.load.readyEndpoints, 1);
  t.ok(first.desired > 1, `scaled up to ${first.desired}`);

  const callers = (await readFile(calls, 'utf8')).trim().split('\n').map((l) => Number(l.split(' ')[0]));
  t.ok(callers.length >= 2, `${callers.length} scaler calls`);
  t.same([...new Set(callers)], [gw.child.pid], 'every scaler call came from the primary');
  // The scaler has run, but its 'scaled' line may still be on its way through the primary's stdout.
  await gw.waitForLog((l) => l.event === 'scaled');
  const scaled = gw.logs.filter((l) => l.event === 'scaled');
  t.ok(scaled.every((l) => l.worker === undefined), 'the decision is logged by the primary, not by a worker');

  // Every worker's admin API shows the primary's decision (each request may land on either worker).
  for (let i = 0; i < 4; i++) {
    const view = JSON.parse((await get(gw.adminPort as number, '/admin/scaling')).body) as { decisions: { service: string; desired: number; direction: string }[] };
    t.ok(view.decisions.some((d) => d.service === 'svc' && d.desired === first.desired && d.direction === 'up'), `admin view ${i} shows the decision`);
  }

  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null }, 'drained and exited');
});

t.test('the process scaler runs once, in the primary: every worker routes to its instances, a restarted worker too, and a reload rescales them', async (t) => {
  const gw = await spawnGateway(processScaled('min: 2\nmax: 4\nintervalMs: 200'), ['--workers', '2']);
  t.teardown(() => gw.kill());
  await workersReady(gw, 2);
  const started = () => gw.logs.filter((l) => l.event === 'instance-starting');
  t.equal(started().length, 2, 'one set of two instances');
  t.ok(started().every((l) => l.worker === undefined), 'started by the primary');
  for (const l of started()) t.equal(await parentOf(l.pid as number), gw.child.pid, `instance ${String(l.instance)} is the primary's child`);
  const addresses = () => new Set(started().map((l) => `http://127.0.0.1:${String(l.port)}`));

  /**
   * Sends `n` requests at once, then one at a time until both workers served some (a burst of new connections can
   * land on one worker); the access lines they made, or undefined if one failed.
   */
  const routed = async (n: number) => {
    const from = accessLines(gw).length;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => get(gw.port, `/p${i}`)));
    await repeatUntil(async () => results.push(await get(gw.port, `/p${results.length}`)), () => fromWorkers(accessLines(gw).slice(from)).size === 2);
    await waitFor(() => accessLines(gw).length >= from + results.length, 20_000, 'their access lines', 20);
    return results.every((r) => r.status === 200) ? accessLines(gw).slice(from, from + results.length) : undefined;
  };
  let lines = await routed(20);
  t.ok(lines, 'every request answered');
  t.same([...fromWorkers(lines ?? [])].sort(), [1, 2], 'both workers served');
  t.ok(lines?.every((l) => addresses().has(l.endpoint as string)), 'every worker routed to the primary\'s instances');

  // A worker killed outright is restarted, gets the same endpoints, and no new instance starts for it.
  const victim = gw.logs.find((l) => l.event === 'worker-ready' && l.worker === 1)!.pid as number;
  process.kill(victim, 'SIGKILL');
  await gw.waitForLog((l) => l.event === 'worker-exit');
  await workersReady(gw, 3);
  lines = await routed(20);
  t.ok(lines, 'every request answered after the restart');
  t.same([...fromWorkers(lines ?? [])].sort(), [2, 3], 'the new worker serves');
  t.ok(lines?.every((l) => addresses().has(l.endpoint as string)), 'on the same instances');
  t.equal(started().length, 2, 'no instance started for the restarted worker');

  // Scaling goes on: a reload that raises min to 3 reaches the primary's loop, which starts one more instance.
  await gw.rewrite(processScaled('min: 3\nmax: 4\nintervalMs: 200'));
  gw.child.kill('SIGHUP');
  await gw.waitForLog((l) => l.event === 'cluster-reloaded');
  await gw.waitForLog((l) => l.event === 'scaled' && l.to === 3);
  await waitFor(async () => new Set((await routed(12))?.map((l) => l.endpoint)).size === 3, 20_000, 'requests reaching the third instance', 100);
  t.equal(started().length, 3, 'the third instance, started once');
  t.ok(started().every((l) => l.worker === undefined));

  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
  const stopped = gw.logs.filter((l) => l.event === 'instance-stopping');
  t.equal(stopped.length, 3, 'the primary stopped its instances after the workers drained');
});

t.test('scale from zero across workers: requests held in both workers wake the primary, one instance starts, all are served', async (t) => {
  const gw = await spawnGateway(processScaled('min: 0\nmax: 2\nintervalMs: 200\nhold: { maxQueue: 50, timeoutMs: 20000 }'), ['--workers', '2']);
  t.teardown(() => gw.kill());
  await workersReady(gw, 2);
  t.equal(gw.logs.filter((l) => l.event === 'instance-starting').length, 0, 'nothing runs before the first request');

  // The instance takes 1.5 s to pass its health check: requests started meanwhile, on both workers, all wait.
  const pending: Promise<{ status: number; body: string }>[] = [];
  for (let i = 0; i < 8; i++) {
    pending.push(get(gw.port, `/cold${i}`));
    await new Promise((r) => setTimeout(r, 60));
  }
  const results = await Promise.all(pending);
  t.same(results.map((r) => r.status), new Array(8).fill(200), 'every held request was served');
  const holds = gw.logs.filter((l) => l.event === 'hold');
  t.same([...new Set(holds.map((l) => l.worker))].sort(), [1, 2], 'requests were held in both workers');
  const scaled = gw.logs.filter((l) => l.event === 'scaled');
  t.match(scaled[0], { from: 0, to: 1, cause: 'scale-from-zero' }, 'the primary scaled 0 → 1');
  t.equal(scaled[0]?.worker, undefined);
  t.match(String(scaled[0]?.msg), /requests waiting/);
  t.equal(gw.logs.filter((l) => l.event === 'instance-starting').length, 1, 'one instance, however many workers held requests');
  t.same([...new Set(gw.logs.filter((l) => l.event === 'hold-released').map((l) => l.worker))].sort(), [1, 2], 'both workers released theirs');

  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

for (const args of [[], ['--workers', '2']]) {
  t.test(`kill -9 of the gateway${args.length ? ' primary' : ''}: the kernel sends its process-scaler instances SIGTERM, none is left running`, async (t) => {
    const gw = await spawnGateway(processScaled('min: 2\nmax: 2\nintervalMs: 200'), args);
    t.teardown(() => gw.kill());
    await waitFor(() => gw.logs.filter((l) => l.event === 'instance-ready').length >= 2, 20_000, 'two instances ready', 20);
    const pids = gw.logs.filter((l) => l.event === 'instance-starting').map((l) => l.pid as number);
    t.equal(pids.filter(alive).length, 2, 'both instances run');
    gw.child.kill('SIGKILL');
    await gw.exited;
    await waitFor(() => pids.filter(alive).length === 0, 10_000, 'every instance gone', 20);
    t.pass('no instance outlived the gateway');
  });
}
