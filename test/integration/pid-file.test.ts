import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { waitFor } from '../helpers/capture-log.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

// A third-party plugin whose module finishes loading only once the file `go` exists: the gateway is held in its
// start (config loaded, nothing listening yet) for as long as the test wants.
const SLOW_PLUGIN = `import { existsSync } from 'node:fs';
await new Promise((resolve) => { const t = setInterval(() => { if (existsSync(new URL('./go', import.meta.url))) { clearInterval(t); resolve(); } }, 10); });
export default { kind: 'discovery', type: 'held', optionsSchema: { type: 'object' },
  create: () => ({ async *watch() { yield { kind: 'reset', endpoints: [] }; }, async close() {} }) };
`;

const ROUTES = `plugins: [./held.mjs]
listen: 127.0.0.1:0
admin: 127.0.0.1:0
services:
  a: { discovery: { type: held } }
routes:
  - { match: { path: / }, service: a }
`;

async function startGantry(t: Test, args: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-pid-'));
  await writeFile(join(dir, 'held.mjs'), SLOW_PLUGIN);
  await writeFile(join(dir, 'routes.yaml'), ROUTES);
  const pidFile = join(dir, 'gantry.pid');
  const child = spawn(process.execPath, [CLI, 'start', '-c', join(dir, 'routes.yaml'), '--pid-file', pidFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => { if (l.startsWith('{')) logs.push(JSON.parse(l) as Record<string, unknown>); });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return { dir, pidFile, child, exited, logs, alive, stderr: () => stderr, go: () => writeFile(join(dir, 'go'), '') };
}

for (const mode of [[], ['--workers', '2']]) {
  const name = mode.length ? 'with --workers' : 'in one process';
  t.test(`${name}: the pid file holds the pid to signal from the start, a SIGHUP during the start is a reload after it, and the file is removed at exit`, async (t) => {
    const g = await startGantry(t, mode);
    await waitFor(() => existsSync(g.pidFile) || !g.alive(), 30_000, 'pid file');
    t.equal(await readFile(g.pidFile, 'utf8'), `${g.child.pid}\n`, 'the pid of the process that was started (the primary with workers)');
    // Still loading the plugin: the default action of SIGHUP would end the process here.
    g.child.kill('SIGHUP');
    await g.go();
    const startedEvent = mode.length ? 'cluster-started' : 'started';
    await waitFor(() => g.logs.some((l) => l.event === startedEvent) || !g.alive(), 60_000, `${startedEvent} line`);
    t.ok(g.alive(), `still running after the early SIGHUP (stderr: ${g.stderr()})`);
    t.equal(g.logs.find((l) => l.event === startedEvent)?.pid, g.child.pid, `the ${startedEvent} line names the pid`);
    // The held SIGHUP is delivered once the handlers are in place: a reload of the unchanged file.
    await waitFor(() => g.logs.some((l) => typeof l.event === 'string' && l.event.startsWith('reload')) || !g.alive(), 60_000, 'reload after the early SIGHUP');
    t.ok(g.alive());
    g.child.kill('SIGTERM');
    const [code] = await g.exited;
    t.equal(code, 0, 'drained and exited 0');
    t.notOk(existsSync(g.pidFile), 'pid file removed at exit');
  });
}

t.test('a SIGTERM during the start drains once the gateway is up instead of killing it half-started', async (t) => {
  const g = await startGantry(t, []);
  await waitFor(() => existsSync(g.pidFile) || !g.alive(), 30_000, 'pid file');
  g.child.kill('SIGTERM');
  await g.go();
  const [code, signal] = await g.exited;
  t.same({ code, signal }, { code: 0, signal: null });
  t.ok(g.logs.some((l) => l.event === 'stopped'), 'the gateway logged its stop');
  t.notOk(existsSync(g.pidFile));
});

t.test('a pid file that cannot be written stops the start with exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-pid-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'routes.yaml'), 'services: { a: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } } }\nroutes: [{ match: { path: / }, service: a }]\nlisten: 127.0.0.1:0\n');
  const child = spawn(process.execPath, [CLI, 'start', '-c', join(dir, 'routes.yaml'), '--pid-file', join(dir, 'missing', 'gantry.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const [code] = await once(child, 'exit') as [number | null];
  t.equal(code, 1);
  t.match(stderr, /ENOENT.*gantry\.pid/);
});
