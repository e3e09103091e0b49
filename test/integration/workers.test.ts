import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { processesNaming, repeatUntil, spawnGateway, workersReady, type GatewayProcess } from '../helpers/gateway-process.js';
import { runLoad } from '../helpers/load.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';
import { getOnNewConnection as get, requestOnNewConnection } from '../helpers/get-new-connection.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

function config(upstream: string, variant: string): string {
  return `listen: 127.0.0.1:0
admin: null
log: { level: info, access: true }
services:
  svc: { discovery: { type: static, endpoints: ["${upstream}"] } }
routes:
  - { name: both, match: { path: /both }, service: svc }
  - { name: only-${variant}, match: { path: /only-${variant} }, service: svc }
`;
}

/**
 * The statuses of GET `path` on new connections, 4 requests at least and until both workers answered one (access
 * lines): with SCHED_NONE the kernel, not the primary, picks the worker of each connection.
 */
async function fromBoth(gw: GatewayProcess, path: string): Promise<number[]> {
  const from = gw.logs.length;
  const statuses = new Set<number>();
  let sent = 0;
  const both = () => new Set(gw.logs.slice(from).filter((l) => l.log === 'access' && l.path === path).map((l) => l.worker)).size === 2;
  await repeatUntil(async () => { statuses.add((await get(gw.port, path)).status); sent++; }, () => sent >= 4 && both());
  return [...statuses];
}

t.test('two workers share the port, reload together under load with 0 failures, and drain on SIGTERM', async (t) => {
  const up = await startRecordingUpstream((_req, res) => { res.writeHead(200, { 'content-length': '2' }); res.end('ok'); });
  const gw = await spawnGateway(config(up.url, 'a'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);

  // 16 connections: the kernel hashes each to one worker's socket, so all on one of two is 1 chance in 32 768.
  const load = runLoad({ url: `http://127.0.0.1:${gw.port}/both`, connections: 16, duration: 3 });
  await new Promise((r) => setTimeout(r, 500));
  await gw.rewrite(config(up.url, 'b'));
  gw.child.kill('SIGHUP');
  const reloaded = await gw.waitForLog((l) => l.event === 'cluster-reloaded');
  t.same(reloaded.generations, [2, 2], 'both workers committed generation 2');
  await gw.rewrite('services: {\n');
  gw.child.kill('SIGHUP');
  const refused = await gw.waitForLog((l) => l.event === 'reload-refused' && l.worker === undefined);
  t.match(String(refused.msg), /every worker keeps its config: .*routes\.yaml:\d+:\d+/);
  const result = await load;
  t.equal(result.errors + result.timeouts + result.non2xx, 0, `${result.requests.total} requests during the reloads, none failed`);
  const workers = new Set(gw.logs.filter((l) => l.log === 'access').map((l) => l.worker));
  t.same([...workers].sort(), [1, 2], 'both workers served traffic');
  t.equal(gw.logs.filter((l) => l.event === 'reloaded').length, 2, 'no worker swapped to the refused file');

  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null }, 'every worker drained, the primary exits 0');
  const lines = gw.logs.filter((l) => l.log === 'access' && l.path === '/both').length;
  t.ok(lines >= result.requests.total, `an access line for each of the ${result.requests.total} answered requests (${lines}), none lost at the exit`);
});

t.test('every worker\'s metrics and admin API count the cluster\'s reloads, refused by the primary\'s check or not', async (t) => {
  const up = await startRecordingUpstream();
  const withAdmin = (variant: string) => config(up.url, variant).replace('admin: null', 'admin: 127.0.0.1:0');
  const gw = await spawnGateway(withAdmin('a'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  const runs = () => gw.logs.filter((l) => l.worker === undefined && ['cluster-reloaded', 'reload-refused', 'reload-unchanged'].includes(String(l.event))).length;

  await gw.rewrite(withAdmin('b'));
  gw.child.kill('SIGHUP');
  await gw.waitForLog(() => runs() === 1);
  await gw.rewrite('services: {\n');   // refused by the primary's own check: no worker is asked
  gw.child.kill('SIGHUP');
  await gw.waitForLog(() => runs() === 2);
  await gw.rewrite(withAdmin('b'));
  gw.child.kill('SIGHUP');
  await gw.waitForLog(() => runs() === 3);
  await new Promise((r) => setTimeout(r, 300));   // the announcement reaches the workers

  // Requests on new connections, which either worker may take.
  for (let i = 0; i < 4; i++) {
    const metrics = parsePromText((await get(gw.adminPort as number, '/metrics')).body);
    t.same(['applied', 'refused', 'unchanged'].map((result) => sampleValue(metrics, 'gantry_config_reloads_total', { result })), [1, 1, 1], `scrape ${i}: one reload of each result`);
    t.equal(sampleValue(metrics, 'gantry_config_last_reload_successful'), 1);
  }
  const pids = new Set<number>();
  await repeatUntil(async () => {
    const view = JSON.parse((await get(gw.adminPort as number, '/admin/config')).body) as { version: number; lastReload: { result: string }; gantry: { pid: number } };
    t.match(view, { version: 2, lastReload: { result: 'unchanged' } }, `admin view of ${view.gantry.pid}: the last reload, on generation 2`);
    pids.add(view.gantry.pid);
  }, () => pids.size === 2);
  t.pass('both workers answered');
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

t.test('GET /metrics and the dashboard\'s views on either worker sum the whole cluster: request counters over both workers, copies of the primary\'s figures once', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(config(up.url, 'a').replace('admin: null', 'admin: 127.0.0.1:0'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  const statuses: number[] = [];
  const served = () => new Set(gw.logs.filter((l) => l.log === 'access').map((l) => l.worker)).size === 2;
  const sent = await repeatUntil(async () => statuses.push((await get(gw.port, '/both')).status), () => statuses.length >= 10 && served());
  t.same(statuses, new Array(sent).fill(200), `both workers served some of the ${sent} requests`);

  for (let i = 0; i < 4; i++) {   // new connections: either worker may answer a scrape
    const metrics = parsePromText((await get(gw.adminPort as number, '/metrics')).body);
    t.same([
      sampleValue(metrics, 'gantry_requests_total', { route: 'both', service: 'svc', status_class: '2xx' }),
      sampleValue(metrics, 'gantry_request_duration_seconds_count', { route: 'both', service: 'svc' }),
      sampleValue(metrics, 'gantry_build_info', { version: String(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version), node: process.versions.node }),
      sampleValue(metrics, 'gantry_upstream_endpoints', { service: 'svc' }),
      sampleValue(metrics, 'gantry_endpoint_healthy', { service: 'svc', endpoint: up.url }),
      sampleValue(metrics, 'gantry_config_version'),
      sampleValue(metrics, 'gantry_config_reloads_total', { result: 'applied' }),
    ], [sent, sent, 1, 1, 1, 1, 0], `scrape ${i}: ${sent} requests over both workers; one build, one endpoint, generation 1`);
    t.ok(sampleValue(metrics, 'process_resident_memory_bytes')! > 0, 'process metrics too');
    // Every process here has Node's raised descriptor limit (the test's own): summed over 2 workers and the primary.
    t.equal(sampleValue(metrics, 'process_max_fds'), 3 * maxOpenFiles(), 'the primary\'s process metrics are in the sum');
  }
  // Answers the gateway made itself (no route), from both workers.
  const from = gw.logs.length;
  let missed = 0;
  const bothMissed = () => new Set(gw.logs.slice(from).filter((l) => l.log === 'access' && l.path === '/nowhere').map((l) => l.worker)).size === 2;
  await repeatUntil(async () => { t.equal((await get(gw.port, '/nowhere')).status, 404); missed++; }, () => missed >= 4 && bothMissed());
  for (let i = 0; i < 4; i++) {   // the dashboard's views too
    const stats = JSON.parse((await get(gw.adminPort as number, '/admin/stats')).body) as { services: Record<string, { summary: { requests: number; p50Ms: number | null } }>; gatewayErrors: unknown[] };
    const services = JSON.parse((await get(gw.adminPort as number, '/admin/services')).body) as { services: { traffic: { requests: number }; endpoints: { health: string; inFlight: number }[] }[] };
    t.match([stats.services.svc!.summary, services.services[0]], [{ requests: sent, p50Ms: Number }, { traffic: { requests: sent }, endpoints: [{ health: 'healthy', inFlight: 0 }] }], `views ${i}: the ${sent} requests of both workers`);
    t.same(stats.gatewayErrors, [{ code: 'GW_ERR_NO_ROUTE', status: 404, count: missed }], `views ${i}: the ${missed} answers of no route of both workers`);
  }
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

t.test('POST /admin/reload on any worker reloads every worker together and answers with the outcome; a rotated admin token reaches every worker', async (t) => {
  const up = await startRecordingUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'gantry-token-'));
  const tokenFile = join(dir, 'admin-token');
  writeFileSync(tokenFile, 'first-token-0123456789\n', { mode: 0o600 });
  const withAdmin = (variant: string) => config(up.url, variant).replace('admin: null', `admin: 127.0.0.1:0\nadminAuth: { tokenFile: "${tokenFile}" }`);
  const gw = await spawnGateway(withAdmin('a'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); rmSync(dir, { recursive: true, force: true }); });
  await workersReady(gw, 2);
  const admin = (method: string, path: string, token = 'first-token-0123456789') =>
    requestOnNewConnection(gw.adminPort as number, path, { method, headers: { authorization: `Bearer ${token}` } });
  /** The versions admin requests on new connections say they serve (4 requests at least, until both workers answered). */
  async function serving(): Promise<{ versions: number[]; pids: number }> {
    const pids = new Set<number>();
    const versions: number[] = [];
    await repeatUntil(async () => {
      const view = JSON.parse((await admin('GET', '/admin/config')).body) as { version: number; gantry: { pid: number } };
      versions.push(view.version);
      pids.add(view.gantry.pid);
    }, () => versions.length >= 4 && pids.size === 2);
    return { versions: [...new Set(versions)], pids: pids.size };
  }

  await gw.rewrite(withAdmin('b'));
  const applied = await admin('POST', '/admin/reload');
  t.equal(applied.status, 200);
  t.match(JSON.parse(applied.body), { result: 'applied', generation: 2, changes: { routes: { added: ['only-b'], removed: ['only-a'], changed: [] } } }, 'the answer says what changed');
  t.same((await gw.waitForLog((l) => l.event === 'cluster-reloaded')).generations, [2, 2], 'the primary ran the reload on both workers');
  t.same(await serving(), { versions: [2], pids: 2 }, 'both workers serve generation 2');
  t.same([await fromBoth(gw, '/only-b'), await fromBoth(gw, '/only-a')], [[200], [404]], 'the new routes on either worker');

  // Two POSTs at once, spread over the workers: both answered, by the run that read the broken file.
  await gw.rewrite('services: {\n');
  for (const r of await Promise.all([admin('POST', '/admin/reload'), admin('POST', '/admin/reload')])) {
    t.equal(r.status, 422);
    t.match(JSON.parse(r.body), { result: 'refused', generation: 2, problems: [{ line: Number, text: /routes\.yaml:\d+:\d+: / }] }, 'refused with file:line:col');
  }
  t.same(await serving(), { versions: [2], pids: 2 }, 'every worker still serves generation 2');
  t.equal(gw.logs.filter((l) => l.event === 'reloaded').length, 2, 'one swap per worker, none to the refused file');

  await gw.rewrite(withAdmin('b'));
  writeFileSync(tokenFile, 'second-token-0123456789\n', { mode: 0o600 });
  gw.child.kill('SIGHUP');
  await gw.waitForLog(() => gw.logs.filter((l) => l.event === 'admin-token-changed').length === 2);
  t.same(gw.logs.filter((l) => l.event === 'admin-token-changed').map((l) => l.worker).sort(), [1, 2], 'each worker read the new token');
  for (let i = 0; i < 4; i++) {
    t.same([(await admin('GET', '/admin/config', 'second-token-0123456789')).status, (await admin('GET', '/admin/config')).status], [200, 401], `admin pair ${i}: the new token only`);
  }
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

t.test('a crashed worker is restarted on the config the cluster serves, not on edits of the file not reloaded', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(config(up.url, 'a'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  const pids = () => gw.logs.filter((l) => l.event === 'worker-ready').map((l) => l.pid as number);
  /** The statuses of /only-a, then of /only-b, each from both workers. */
  const routes = async () => [await fromBoth(gw, '/only-a'), await fromBoth(gw, '/only-b')];

  await gw.rewrite('services: {\n');   // broken, and never reloaded
  process.kill(pids()[0]!, 'SIGKILL');
  await gw.waitForLog((l) => l.event === 'worker-exit');
  await workersReady(gw, 3);
  t.same(await routes(), [[200], [404]], 'the restarted worker serves the cluster\'s config, not the broken file');

  await gw.rewrite(config(up.url, 'b'));   // valid, and not reloaded yet
  const killed = [pids()[0], pids()[1]];   // the first victim's replacement is pids()[2]
  process.kill(killed[1]!, 'SIGKILL');
  await gw.waitForLog(() => gw.logs.filter((l) => l.event === 'worker-exit').length === 2);
  await workersReady(gw, 4);
  const from = gw.logs.length;
  t.same(await routes(), [[200], [404]], 'nor the edited file: both workers agree');
  const restarted = gw.logs.filter((l) => l.event === 'worker-ready' && !killed.includes(l.pid as number)).map((l) => l.worker);
  t.same(restarted.sort(), [3, 4], 'both workers now are restarted ones');
  t.ok(restarted.every((worker) => gw.logs.slice(from).some((l) => l.log === 'access' && l.path === '/only-a' && l.worker === worker)), 'and both answered');

  gw.child.kill('SIGHUP');
  t.same((await gw.waitForLog((l) => l.event === 'cluster-reloaded')).generations, [2, 2], 'the reload takes both restarted workers along');
  t.same(await routes(), [[404], [200]], 'now every worker serves the edit');
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

t.test('a worker that cannot start the new config refuses it for the whole cluster: no worker serves it', async (t) => {
  const up = await startRecordingUpstream();
  // A discovery plugin that throws in one worker only: the primary's check passes, worker 2 cannot build the config.
  const dir = mkdtempSync(join(tmpdir(), 'gantry-picky-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const plugin = join(dir, 'picky.mjs');
  writeFileSync(plugin, `import cluster from 'node:cluster';
export default {
  kind: 'discovery', type: 'picky',
  optionsSchema: { type: 'object', required: ['address', 'refuseInWorker'], properties: { address: { type: 'string' }, refuseInWorker: { type: 'integer' } } },
  create(o) {
    if (cluster.worker?.id === o.refuseInWorker) throw new Error('picky refuses in worker ' + o.refuseInWorker);
    return {
      async *watch(_service, signal) {
        yield { kind: 'reset', endpoints: [{ address: o.address, weight: 1 }] };
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      },
      async close() {},
    };
  },
};
`);
  const withPicky = (refuseInWorker: number) => `plugins: [${JSON.stringify(plugin)}]\n${config(up.url, 'a')
    .replace('routes:', `  picky: { discovery: { type: picky, address: "${up.url}", refuseInWorker: ${refuseInWorker} } }\nroutes:`)
  }  - { name: picky, match: { path: /picky }, service: picky }\n`;
  const gw = await spawnGateway(config(up.url, 'a'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  const picky = () => fromBoth(gw, '/picky');

  await gw.rewrite(withPicky(2));
  gw.child.kill('SIGHUP');
  const refused = await gw.waitForLog((l) => l.event === 'reload-refused' && l.worker === undefined);
  t.match(refused, { refusedBy: 1, workers: 2, msg: 'a worker could not prepare the new config; every worker keeps the old one' });
  // Worker 2's own line comes through its own pipe to stdout: it may follow the primary's.
  const why = await gw.waitForLog((l) => l.event === 'reload-refused' && l.worker === 2);
  t.match(String(why.msg), /picky refuses in worker 2/, 'worker 2 said why');
  t.same(await picky(), [404], 'neither worker serves the new route, not even worker 1, which could build it');
  t.equal(gw.logs.filter((l) => l.event === 'reloaded').length, 0, 'no worker swapped its config');
  for (let i = 0; i < 4; i++) t.equal((await get(gw.port, '/only-a')).status, 200, 'the old config serves on');

  await gw.rewrite(withPicky(99));
  gw.child.kill('SIGHUP');
  t.same((await gw.waitForLog((l) => l.event === 'cluster-reloaded')).generations, [2, 2], 'once every worker can, all commit it');
  t.same(await picky(), [200]);
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

t.test('SIGHUP while a worker is still starting: the run waits for it, and every worker ends on the new file', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(config(up.url, 'a'), ['--workers', '2']);   // returns when the first worker started
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await gw.rewrite(config(up.url, 'b'));
  gw.child.kill('SIGHUP');
  const outcome = await gw.waitForLog((l) => l.worker === undefined && ['cluster-reloaded', 'reload-refused'].includes(String(l.event)), 40_000);
  t.equal(outcome.event, 'cluster-reloaded', 'applied, not refused for a worker that could not answer yet');
  await workersReady(gw, 2);
  t.same([await fromBoth(gw, '/only-b'), await fromBoth(gw, '/only-a')], [[200], [404]], 'the new file on either worker');
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
});

/** Processes whose command line names `file` (workers are forked with the primary's arguments). */
/** This process's soft limit on open files, as prom-client's process_max_fds reads it. */
function maxOpenFiles(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files')) as string;
  return Number(line.split(/  +/)[1]);
}

t.test('SIGTERM while the workers are still starting: they drain once up, and the primary exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-test-'));
  const file = join(dir, 'routes.yaml');
  writeFileSync(file, config('http://127.0.0.1:9', 'a'));
  const child = spawn(process.execPath, [CLI, 'start', '-c', file, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    for (const pid of processesNaming(file)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
  });
  const lines = createInterface({ input: child.stdout! });
  let readyBeforeTerm = 0;
  let termSent = false;
  await new Promise<void>((resolve) => lines.on('line', (line) => {
    if (line.includes('"worker-ready"') && !termSent) readyBeforeTerm++;
    // The primary has forked its workers; they are still loading their config.
    if (line.includes('"cluster-started"')) { termSent = true; child.kill('SIGTERM'); resolve(); }
  }));
  // A bound that does not keep the file's process alive once the primary has exited.
  const code = await Promise.race([exited, new Promise<'hung'>((r) => { setTimeout(() => r('hung'), 30_000).unref(); })]);
  t.equal(code, 0, 'the primary exited 0 after its workers drained');
  t.equal(readyBeforeTerm, 0, 'no worker was ready when SIGTERM arrived');
  t.same(processesNaming(file), [], 'no worker is left behind');
});

t.test('with log.file, the primary and every worker write to the file; SIGUSR2 to the primary, then to the process group, reopens it in all and stops none', async (t) => {
  const up = await startRecordingUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'gantry-logfile-'));
  const file = join(dir, 'routes.yaml');
  const logFile = join(dir, 'gantry.log');
  writeFileSync(file, config(up.url, 'a').replace('log: { level: info, access: true }', 'log: { level: info, access: true, file: gantry.log }'));
  // Its own process group, so the test can signal the group as `kill -USR2 -PGID` would.
  const child = spawn(process.execPath, [CLI, 'start', '-c', file, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    for (const pid of processesNaming(file)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const read = (path: string) => { try { return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>); } catch { return []; } };
  await waitFor(() => read(logFile).filter((l) => l.event === 'worker-ready').length === 2, 20_000, 'two workers ready', 50);
  const port = (read(logFile).find((l) => l.event === 'started')!.listen as { port: number }).port;
  /** The workers whose access lines are in `path`, after 4 requests at least and until both workers answered. */
  const served = async (path: string) => {
    const workers = () => new Set(read(path).filter((l) => l.log === 'access').map((l) => l.worker));
    const statuses: number[] = [];
    await repeatUntil(async () => statuses.push((await get(port, '/both')).status), () => statuses.length >= 4 && workers().size === 2);
    t.ok(statuses.every((s) => s === 200), `${statuses.length} requests answered`);
    return workers();
  };
  t.same([...await served(logFile)].sort(), [1, 2], 'both workers\' access lines are in the file');
  t.equal(stdout, '', 'nothing on stdout');

  renameSync(logFile, `${logFile}.1`);   // logrotate
  process.kill(child.pid!, 'SIGUSR2');
  await waitFor(() => read(logFile).filter((l) => l.event === 'log-reopened').length === 3, 20_000, 'three reopens', 50);
  t.same(read(logFile).filter((l) => l.event === 'log-reopened').map((l) => l.worker ?? 0).sort(), [0, 1, 2], 'the primary and both workers reopened');
  t.same([...await served(logFile)].sort(), [1, 2], 'new lines go to the new file');
  const rotated = read(`${logFile}.1`).filter((l) => l.log === 'access').length;

  renameSync(logFile, `${logFile}.2`);
  process.kill(-child.pid!, 'SIGUSR2');   // the whole group: each worker gets it from the kernel and from the primary
  await waitFor(() => new Set(read(logFile).filter((l) => l.event === 'log-reopened').map((l) => l.worker ?? 0)).size === 3, 20_000, 'reopens after the group signal', 50);
  t.same([...await served(logFile)].sort(), [1, 2], 'every process survived and writes to the newest file');
  t.equal(read(`${logFile}.1`).filter((l) => l.log === 'access').length, rotated, 'nothing more went to the first rotated file');

  process.kill(child.pid!, 'SIGTERM');
  t.equal(await exited, 0);
  t.ok(read(logFile).some((l) => l.event === 'stopped' && l.worker === undefined), 'the primary\'s last line is in the file');
});
