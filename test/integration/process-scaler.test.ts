import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { pluginContext, type DiscoveryUpdate, type Scaler } from '../../gateway/plugin-api/index.js';
import { validatePluginOptions } from '../../gateway/config/schema-validator.js';
import { processScaler } from '../../plugins/scaling/process.js';
import { findExecutable } from '../../plugins/scaling/process-instance.js';
import { waitFor } from '../helpers/capture-log.js';
import { captureLogger } from '../helpers/capture-logger.js';

const INSTANCE = fileURLToPath(new URL('../fixtures/scaling-instance.js', import.meta.url));

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function start(t: { teardown(fn: () => unknown): void }, extra: Record<string, unknown> = {}, initial = 0) {
  const options: Record<string, unknown> = { command: ['node', INSTANCE], healthIntervalMs: 50, restartBackoff: { initialMs: 200, maxMs: 1000 }, ...extra };
  const problems = validatePluginOptions(processScaler.optionsSchema, options, []);
  if (problems.length) throw new Error(JSON.stringify(problems));
  const captured = captureLogger();
  const abort = new AbortController();
  const scaler = processScaler.create(options as never, pluginContext(captured.log, abort.signal, Date.now, process.cwd()));
  t.teardown(async () => { abort.abort(); await scaler.close(); });
  // As in the gateway: the scaling loop asks for the count in force before the pool starts watching.
  if (initial > 0) void scaler.scale('svc', initial, null as never, AbortSignal.timeout(5000));
  const updates: DiscoveryUpdate[] = [];
  let latest: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  void (async () => {
    for await (const u of (scaler.endpoints as NonNullable<Scaler['endpoints']>)('svc', abort.signal)) {
      updates.push(u);
      if (u.kind === 'reset') latest = u.endpoints.map((e) => e.address);
      for (const w of [...waiters]) if (latest.length === w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    }
  })();
  const endpointsAre = (n: number, timeoutMs = 10_000) => (latest.length === n && updates.length > 0 ? Promise.resolve() : new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never saw ${n} endpoints (have ${latest.length})`)), timeoutMs);
    waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
  }));
  return { scaler, updates, latest: () => latest, endpointsAre, ...captured };
}

async function whoami(address: string): Promise<{ instance: string; pid: number; healthChecks: number }> {
  const res = await fetch(`${address}/whoami`, { signal: AbortSignal.timeout(3000) });
  return await res.json() as { instance: string; pid: number; healthChecks: number };
}

t.test('starts N instances on free loopback ports and lists each only once its health check passes', async (t) => {
  const before = Date.now();
  const p = start(t, { env: { READY_AFTER_MS: '400' } }, 2);
  t.equal(await p.scaler.currentReplicas('svc', AbortSignal.timeout(1000)), 2, 'current is what was asked for');
  await p.endpointsAre(2);
  t.ok(Date.now() - before >= 350, 'not before the health path answered 200');
  t.equal(p.updates[0]?.kind, 'reset');
  t.equal(p.updates[0]?.kind === 'reset' ? p.updates[0].endpoints.length : -1, 2, 'the first update waits for the starting instances');
  const [a, b] = p.latest() as [string, string];
  t.match(a, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.not(a, b, 'each on its own port');
  const wa = await whoami(a);
  t.ok(wa.healthChecks >= 2, 'it was probed until healthy');
  t.ok(p.lines.some((l) => l.event === 'instance-ready'));
  t.ok(p.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('listening on')), 'instance output goes to the log');
  const usage = await p.scaler.resources?.('svc', AbortSignal.timeout(1000));
  t.equal(usage?.instances, 2);
  t.ok((usage?.memoryBytesMean ?? 0) > 1_000_000, `resident memory per instance ${usage?.memoryBytesMean}`);
  t.equal(usage?.cpuCoresMean, null, 'CPU needs two samples');
  await new Promise((r) => setTimeout(r, 200));
  const again = await p.scaler.resources?.('svc', AbortSignal.timeout(1000));
  t.ok(typeof again?.cpuCoresMean === 'number' && again.cpuCoresMean >= 0 && again.cpuCoresMean < 2, `cpu ${again?.cpuCoresMean}`);
});

t.test('restarts a crashed instance with backoff, on a new port, and drops it from the list meanwhile', async (t) => {
  const p = start(t);
  await p.scaler.scale('svc', 2, null as never, AbortSignal.timeout(5000));
  await p.endpointsAre(2);
  const victim = p.latest()[0] as string;
  await fetch(`${victim}/crash`).then((r) => r.text()).catch(() => '');
  await p.endpointsAre(1);
  t.notOk(p.latest().includes(victim), 'the crashed instance left the list at once');
  const crashed = await p.waitFor((l) => l.event === 'instance-crashed');
  t.equal(crashed.code, 3);
  t.equal(crashed.restartInMs, 200);
  await p.endpointsAre(2);
  t.notOk(p.latest().includes(victim), 'the replacement got a fresh port');
  t.equal(await p.scaler.currentReplicas('svc', AbortSignal.timeout(1000)), 2);
  // Crash again at once: the backoff doubles.
  await fetch(`${p.latest()[1] as string}/crash`).then((r) => r.text()).catch(() => '');
  const second = await p.waitFor((l) => l.event === 'instance-crashed' && l !== crashed);
  t.equal(second.restartInMs, 400, 'exponential backoff');
  await p.endpointsAre(2);
});

t.test('stops extra instances gracefully: out of the list first, SIGTERM, SIGKILL after the grace', async (t) => {
  const p = start(t, { stopGraceMs: 300 });
  await p.scaler.scale('svc', 3, null as never, AbortSignal.timeout(5000));
  await p.endpointsAre(3);
  const pids = await Promise.all(p.latest().map(async (a) => (await whoami(a)).pid));
  // A slow request on the instance that will be stopped still finishes.
  const newest = p.latest()[2] as string;
  const slow = fetch(`${newest}/slow?delay=200`, { signal: AbortSignal.timeout(3000) }).then((r) => r.status);
  await new Promise((r) => setTimeout(r, 50));
  await p.scaler.scale('svc', 2, null as never, AbortSignal.timeout(5000));
  await p.endpointsAre(2);
  t.equal(await slow, 200, 'the request in flight finished after SIGTERM');
  await p.waitFor((l) => l.msg === 'SIGTERM: closing');
  t.notOk(p.lines.some((l) => l.event === 'instance-killed'), 'a well-behaved instance needs no SIGKILL');
  t.notOk(p.lines.some((l) => l.event === 'instance-crashed'), 'a stop is not a crash: no restart');
  await t.resolves(waitFor(() => pids.filter(alive).length === 2, 5000, 'the stopped instance exited', 20), 'the stopped instance exited; the others run');

  const stubborn = start(t, { stopGraceMs: 300, env: { IGNORE_SIGTERM: '1' } });
  await stubborn.scaler.scale('svc', 1, null as never, AbortSignal.timeout(5000));
  await stubborn.endpointsAre(1);
  const pid = (await whoami(stubborn.latest()[0] as string)).pid;
  const stopping = Date.now();
  await stubborn.scaler.scale('svc', 0, null as never, AbortSignal.timeout(5000));
  await stubborn.waitFor((l) => l.event === 'instance-killed');
  t.ok(Date.now() - stopping >= 250, 'SIGKILL only after the grace');
  await t.resolves(waitFor(() => !alive(pid), 5000, 'the killed instance gone', 20), 'gone');
});

t.test('close stops every instance; a command that cannot start is retried, never crashes the gateway', async (t) => {
  const p = start(t);
  await p.scaler.scale('svc', 2, null as never, AbortSignal.timeout(5000));
  await p.endpointsAre(2);
  const pids = await Promise.all(p.latest().map(async (a) => (await whoami(a)).pid));
  await p.scaler.close();
  await t.resolves(waitFor(() => pids.filter(alive).length === 0, 5000, 'no orphan', 20), 'no orphan');

  const broken = start(t, { command: ['/nonexistent/binary'] });
  await broken.scaler.scale('svc', 1, null as never, AbortSignal.timeout(5000));
  const crashed = await broken.waitFor((l) => l.event === 'instance-crashed');
  t.match(crashed.err, /ENOENT/);
  await broken.waitFor((l) => l.event === 'instance-crashed' && l !== crashed, 3000);
  t.equal(broken.latest().length, 0);
});

t.test('findExecutable finds a command as spawn would: a path from the cwd, a bare name on PATH, executable files only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-exec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(dir, 'bin', 'data'), 'not a program', { mode: 0o644 });
  t.equal(findExecutable('bin/tool', dir, undefined), join(dir, 'bin', 'tool'), 'a relative path, from the cwd');
  t.equal(findExecutable('tool', '/', `/nonexistent:${join(dir, 'bin')}`), join(dir, 'bin', 'tool'), 'a bare name, on PATH in order');
  t.equal(findExecutable('data', '/', join(dir, 'bin')), undefined, 'a file that is not executable');
  t.equal(findExecutable('bin', '/', dir), undefined, 'a directory');
  t.equal(findExecutable('tool', dir, undefined), undefined, 'a bare name is not looked for in the cwd');
});
