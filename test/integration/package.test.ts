import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

// The package as a user gets it: `npm pack` in a copy of the sources (its prepack builds dist/ there, so the suite's
// own dist/ is never rebuilt under the other tests), `npm install` of the tarball in an empty project, and the
// installed `gantry` bin run through npx. npm runs on the Node that runs this test.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'routes.yaml', 'README.md', 'docs', 'deploy', 'gateway', 'plugins', 'examples', 'scripts'];
const ENV = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' };
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };

t.setTimeout(600_000);   // a pack (one tsc build) and an install, on a shared machine

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: ENV, timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A long-running child whose stdout JSON lines are collected (other lines are kept as text). */
function runLogged(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = ENV) {
  const child: ChildProcess = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const text: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  createInterface({ input: child.stdout! }).on('line', (l) => {
    if (l.startsWith('{')) logs.push(JSON.parse(l) as Record<string, unknown>); else text.push(l);
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const alive = () => child.exitCode === null && child.signalCode === null;
  const logged = async (event: string, timeoutMs = 60_000) => {
    await waitFor(() => logs.some((l) => l.event === event) || !alive(), timeoutMs, `"${event}" log line`, 20);
    const line = logs.find((l) => l.event === event);
    if (!line) throw new Error(`exited before "${event}": ${stderr}`);
    return line;
  };
  return { child, logs, text, exited, alive, logged, stderr: () => stderr };
}

function isRunning(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  return { status: res.status, body: await res.text() };
}

const work = await mkdtemp(join(tmpdir(), 'gantry-package-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const copy = join(work, 'source');
const project = join(work, 'project');

const ownRoutes = (upstream: string) => `listen: 127.0.0.1:0
admin: 127.0.0.1:0
services:
  mine: { discovery: { type: static, endpoints: ["${upstream}"] } }
routes:
  - { match: { path: /mine }, service: mine, stripPrefix: true }
`;

t.test('npm pack builds a tarball of the built code, the schema, routes.yaml and the docs, without tests or benchmarks', async (t) => {
  await mkdir(copy);
  for (const entry of SOURCES) await cp(join(ROOT, entry), join(copy, entry), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], copy);
  t.equal(packed.code, 0, 'npm pack succeeds', { stderr: packed.stderr });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [{ filename: string; files: { path: string }[] }];
  const files = info.files.map((f) => f.path);
  for (const needed of ['dist/gateway/cli.js', 'dist/gateway/config/routes.schema.json', 'dist/gateway/admin/dashboard/index.html',
    'dist/plugins/index.js', 'dist/examples/echo-server.js', 'routes.yaml', 'README.md', 'docs/configuration.md',
    'docs/production.md', 'deploy/systemd/gantry.service', 'package.json']) {
    t.ok(files.includes(needed), `the tarball holds ${needed}`);
  }
  t.same(files.filter((f) => /^dist\/(test|bench)\/|\.map$|\.ts$/.test(f)), [], 'no tests, benchmarks, sources or source maps');
  const manifest = JSON.parse(await readFile(join(copy, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.ok(manifest.scripts.prepare, 'the source package.json keeps its prepare script (git installs build with it)');
  t.notOk(existsSync(join(copy, 'package.json.packing')), 'postpack put package.json back');

  // A project of the user's: npm lists protobufjs' postinstall (etcd3's gRPC client; Gantry does not need it) until
  // the project decides on it, as README.md says.
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ private: true, allowScripts: { protobufjs: false } }));
  const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, info.filename)], project);
  t.equal(installed.code, 0, 'npm install of the tarball succeeds', { stderr: installed.stderr });
  t.equal(installed.stderr.split('\n').filter((l) => /warn|ERR/i.test(l)).join('\n'), '', 'no install-time warnings');
});

t.test('the installed bin: --version, --help, validate, and start on a routes.yaml of its own, 200 through it', async (t) => {
  const version = await run('npx', ['--no-install', 'gantry', '--version'], project);
  t.equal(version.stdout, `gantry ${pkg.version} (Node.js ${process.version})\n`);
  const help = await run('npx', ['--no-install', 'gantry', '--help'], project);
  t.equal(help.code, 0);
  t.match(help.stdout, /gantry start/);

  const upstream = await startRecordingUpstream();
  t.teardown(() => upstream.close());
  await writeFile(join(project, 'routes.yaml'), ownRoutes(upstream.url));
  const valid = await run('npx', ['--no-install', 'gantry', 'validate'], project);
  t.equal(valid.code, 0, 'its own routes.yaml validates', { stderr: valid.stderr });
  t.match(valid.stdout, /^routes\.yaml: ok \(1 routes, 1 services\)/);
  const shipped = await run('npx', ['--no-install', 'gantry', 'validate', '-c', 'node_modules/gantry/routes.yaml'], project);
  t.equal(shipped.code, 0, 'the shipped routes.yaml validates', { stderr: shipped.stderr });

  const pidFile = join(project, 'gantry.pid');
  const gw = runLogged('npx', ['--no-install', 'gantry', 'start', '--pid-file', pidFile], project);
  t.teardown(async () => {
    const pid = existsSync(pidFile) ? Number(await readFile(pidFile, 'utf8')) : undefined;
    if (pid && isRunning(pid)) process.kill(pid, 'SIGKILL');
    if (gw.alive()) gw.child.kill('SIGKILL');
  });
  const started = await gw.logged('started');
  const pid = Number(await readFile(pidFile, 'utf8'));
  t.equal(started.pid, pid, 'the started line and the pid file name the same process');
  t.not(pid, gw.child.pid, 'which is not npx\'s own');
  const port = (started.listen as { port: number }).port;
  const res = await get(`http://127.0.0.1:${port}/mine/hello`);
  t.equal(res.status, 200);
  t.equal(upstream.requests.at(-1)?.url, '/hello');
  // The pid to signal is the gateway's: a reload, then a drain.
  process.kill(pid, 'SIGHUP');
  await gw.logged('reload-unchanged');
  process.kill(pid, 'SIGTERM');
  await gw.logged('stopped');
  await gw.exited;
  t.notOk(existsSync(pidFile), 'the pid file is removed at exit');
});

t.test('the shipped demo resolves from the package: its process scaler starts the packaged echo server', async (t) => {
  const dir = join(project, 'node_modules', 'gantry');
  // The shipped file, on ports of the test's own; the command path is relative to the gateway's working directory.
  const demo = (await readFile(join(dir, 'routes.yaml'), 'utf8')).replace(/^listen: .*$/m, 'listen: 127.0.0.1:0').replace(/^admin: .*$/m, 'admin: 127.0.0.1:0');
  await writeFile(join(work, 'demo.yaml'), demo);
  const gw = runLogged(join(project, 'node_modules', '.bin', 'gantry'), ['start', '-c', join(work, 'demo.yaml')], dir);
  t.teardown(async () => { if (gw.alive()) { gw.child.kill('SIGTERM'); await gw.exited; } });
  const started = await gw.logged('started');
  const port = (started.listen as { port: number }).port;
  await gw.logged('instance-ready');
  const res = await get(`http://127.0.0.1:${port}/echo/hello`);
  t.equal(res.status, 200, 'the demo upstream answers through the gateway', { body: res.body });
  gw.child.kill('SIGTERM');
  const [code] = await gw.exited;
  t.equal(code, 0);
});

t.test('npm start: npm passes SIGTERM to the gateway (it is npm\'s child), and the printed pid takes SIGHUP', async (t) => {
  const upstream = await startRecordingUpstream();
  t.teardown(() => upstream.close());
  await writeFile(join(work, 'start.yaml'), ownRoutes(upstream.url));
  const npm = runLogged('npm', ['start'], copy, { ...ENV, GANTRY_CONFIG: join(work, 'start.yaml') });
  let gatewayPid = 0;
  t.teardown(() => {
    if (gatewayPid && isRunning(gatewayPid)) process.kill(gatewayPid, 'SIGKILL');
    if (npm.alive()) npm.child.kill('SIGKILL');
  });
  const started = await npm.logged('started', 180_000);   // npm start builds first
  gatewayPid = started.pid as number;
  t.ok(npm.text.some((l) => l.startsWith(`gateway pid ${gatewayPid} `)), 'the launcher prints the gateway\'s pid');
  t.not(gatewayPid, npm.child.pid);
  const port = (started.listen as { port: number }).port;
  t.equal((await get(`http://127.0.0.1:${port}/mine/x`)).status, 200);
  process.kill(gatewayPid, 'SIGHUP');
  await npm.logged('reload-unchanged');
  t.ok(npm.alive(), 'npm still runs');
  // What systemd or a terminal's Ctrl-C does to the process it started: the gateway drains and both exit.
  npm.child.kill('SIGTERM');
  await npm.exited;
  await waitFor(() => !isRunning(gatewayPid), 30_000, 'the gateway exiting', 50).catch(() => {});
  t.notOk(isRunning(gatewayPid), 'the gateway did not stay behind as an orphan');
  t.ok(npm.logs.some((l) => l.event === 'stopped'), 'it drained and stopped');
});
