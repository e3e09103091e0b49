import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { ClosedLoad, fleetOf, scaleCalls, slowUpstream } from '../helpers/fleet.js';
import { spawnGateway, workersReady, type GatewayProcess } from '../helpers/gateway-process.js';

const TTL_S = 2;
const INTERVAL_MS = 300;

interface FleetFiles {
  readonly dir: string;
  readonly calls: string;
  readonly count: string;
  readonly script: string;
}

/** The scale command: records `INSTANCE REPLICAS`, keeps the count; `then` runs after (with $2 the count). */
async function files(t: { teardown(fn: () => unknown): void }, initial: number, then = ''): Promise<FleetFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-fleet-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = { dir, calls: join(dir, 'calls.log'), count: join(dir, 'count'), script: join(dir, 'scale.sh') };
  await writeFile(f.count, `${initial}\n`);
  await writeFile(f.script, `echo "$1 $2" >> ${f.calls}\necho "$2" > ${f.count}\n${then}\n`);
  return f;
}

/**
 * One gateway of the fleet: an exec scaler that records each call with the caller's instance (as `kubectl scale`
 * would be called from each host), in-flight target 2.5 per replica (the counts below fall between two integers), short windows so a test is bounded.
 */
function gatewayConfig(instance: string | null, etcd: EtcdServer, f: FleetFiles, service: string, scaling = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: info, access: false }
fleet:
  name: test-fleet
  etcd: { endpoints: ["${etcd.url}"] }
${instance === null ? '' : `  instance: ${instance}\n`}  leaseTtlS: ${TTL_S}
services:
  api:
${service}
    scaling:
      scaler:
        type: exec
        scale: 'sh ${f.script} ${instance ?? 'any'} {replicas}'
        current: 'cat ${f.count}'
      min: 1
      max: 10
      target: { inFlight: 2.5 }
      windows: { stableMs: 4000, panicMs: 2000 }
      panicThreshold: 0
      scaleDown: { stabilizationWindowMs: 4000 }
      intervalMs: ${INTERVAL_MS}
      syncMs: 1000
${scaling}
routes:
  - match: { path: / }
    service: api
`;
}

async function startFleet(t: { teardown(fn: () => unknown): void }, etcd: EtcdServer, f: FleetFiles, upstream: string, names = ['gw-a', 'gw-b', 'gw-c']): Promise<GatewayProcess[]> {
  const service = `    discovery: { type: static, endpoints: ["${upstream}"] }`;
  const gws = await Promise.all(names.map((name) => spawnGateway(gatewayConfig(name, etcd, f, service))));
  t.teardown(() => Promise.all(gws.map((g) => g.kill())));
  return gws;
}

async function leaderOf(gws: readonly GatewayProcess[]): Promise<GatewayProcess> {
  return waitFor(async () => {
    for (const g of gws) {
      if (g.child.exitCode !== null || g.child.signalCode !== null) continue;
      const f = await fleetOf(g.adminPort!).catch(() => null);
      if (f && f.leader === f.self && f.leaseRemainingMs !== null) return g;
    }
    return false;
  }, 20_000, 'a leader', 100);
}

/** The leader's logged decisions, for a failure's message. */
function reasons(gws: readonly GatewayProcess[]): string {
  return gws.flatMap((g) => g.logs.filter((l) => l.event === 'scaled').map((l) => `${String(l.to)}: ${String(l.msg)}`)).join(' | ');
}

/** Scale calls never repeat the count just set: each decision was carried out once. */
function noRepeatedCall(calls: readonly { replicas: number }[]): boolean {
  return calls.every((c, i) => i === 0 || c.replicas !== calls[i - 1]!.replicas);
}

/**
 * etcd, a slow upstream and three gateways of one fleet (all stopped by the test), 3 requests kept in flight through
 * each: 9 in all at 2.5 per replica, which the fleet scales to 4 (resolves once it has).
 */
async function threeScaledToFour(t: Test) {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const up = await slowUpstream(200);
  t.teardown(() => up.close());
  const f = await files(t, 1);
  const gws = await startFleet(t, etcd, f, up.url);
  const loads = gws.map((g) => new ClosedLoad(g.port));
  t.teardown(() => loads.forEach((l) => l.stop()));
  for (const l of loads) l.set(3);
  await waitFor(async () => (await scaleCalls(f.calls)).at(-1)?.replicas === 4, 20_000, 'scaled to 4', 100)
    .catch(async (err: Error) => { throw new Error(`${err.message}; calls ${JSON.stringify(await scaleCalls(f.calls))}`); });
  return { etcd, up, f, gws, loads };
}

t.test('three gateways scale as one: one caller, the count the summed load needs, no flapping', async (t) => {
  // 1:1:1, 3 requests in flight through each: 9 in flight at 2.5 per replica needs 4. Each gateway alone sees 3 (2 replicas).
  const { f, gws, loads } = await threeScaledToFour(t);
  // Held for a stable window and a half with the same load: no further call.
  const settled = (await scaleCalls(f.calls)).length;
  await new Promise((r) => setTimeout(r, 6000));
  let calls = await scaleCalls(f.calls);
  t.equal(calls.length, settled, `no call while the load holds: ${JSON.stringify(calls)} ${reasons(gws)}`);

  // 3:1:0, 12 in flight in all: 5 replicas, though one gateway sees none and another 9 (4 replicas) of it.
  loads[0]!.set(9);
  loads[2]!.set(0);
  await waitFor(async () => (await scaleCalls(f.calls)).at(-1)?.replicas === 5, 20_000, 'scaled to 5', 100)
    .catch(async (err: Error) => { throw new Error(`${err.message}; calls ${JSON.stringify(await scaleCalls(f.calls))}`); });
  calls = await scaleCalls(f.calls);
  t.equal(new Set(calls.map((c) => c.instance)).size, 1, `one gateway made every call: ${JSON.stringify(calls)}`);
  t.ok(calls.every((c, i) => i === 0 || c.replicas > calls[i - 1]!.replicas), `the count only rose: ${JSON.stringify(calls)}`);
  const leader = await leaderOf(gws);
  t.equal(calls[0]!.instance, (await fleetOf(leader.adminPort!)).self, 'the caller is the elected leader');
  t.same(loads.map((l) => l.failed), [0, 0, 0], 'no request failed');

  const followers = gws.filter((g) => g !== leader);
  const view = (await (await fetch(`http://127.0.0.1:${followers[0]!.adminPort}/admin/scaling`)).json()) as { decisions: { desired: number }[] };
  t.ok(view.decisions.some((d) => d.desired === 5), 'a follower\'s /admin/scaling shows the leader\'s decisions');
  const metrics = await (await fetch(`http://127.0.0.1:${leader.adminPort}/metrics`)).text();
  t.match(metrics, /gantry_fleet_leader\{fleet="test-fleet"\} 1/);
  t.match(metrics, /gantry_fleet_gateways\{fleet="test-fleet"\} 3/);
});

t.test('SIGKILL of the leader under load: another leads within the lease and an interval; survivors fail nothing; no decision is carried out twice', async (t) => {
  const { f, gws, loads } = await threeScaledToFour(t);

  const leader = await leaderOf(gws);
  const survivors = gws.filter((g) => g !== leader);
  const leaderLoad = loads[gws.indexOf(leader)]!;
  leaderLoad.stop();
  const before = survivors.map((g) => loads[gws.indexOf(g)]!.failed);
  const killedAt = Date.now();
  leader.child.kill('SIGKILL');
  const next = await leaderOf(survivors);
  const tookMs = Date.now() - killedAt;
  // etcd expires the lease at most TTL after the last keep-alive; the bound adds an interval and slack for a busy machine.
  t.ok(tookMs <= TTL_S * 1000 + INTERVAL_MS + 1500, `a new leader after ${tookMs} ms`);
  t.not(next, leader);

  // 6 in flight now: 3 replicas, but not before the scale-down window the previous leader started has passed.
  await waitFor(async () => (await scaleCalls(f.calls)).at(-1)?.replicas === 3, 30_000, 'scaled down to 3', 100)
    .catch(async (err: Error) => { throw new Error(`${err.message}; calls ${JSON.stringify(await scaleCalls(f.calls))}`); });
  const downAfterMs = Date.now() - killedAt;
  // The previous leader's scale-down window (4 s of recommendations for 4) came over with its policy history.
  t.ok(downAfterMs >= 3500, `the scale-down waited for the carried-over stabilization window: ${downAfterMs} ms after the kill`);
  const calls = await scaleCalls(f.calls);
  t.ok(noRepeatedCall(calls), `no decision carried out twice: ${JSON.stringify(calls)}`);
  const nextName = (await fleetOf(next.adminPort!)).self;
  t.equal(calls.at(-1)!.instance, nextName, 'the new leader scaled down');
  t.same(survivors.map((g, i) => loads[gws.indexOf(g)]!.failed - before[i]!), [0, 0], `no failed request on the survivors: ${survivors.map((g) => loads[gws.indexOf(g)]!.errors.join(',')).join(' / ')}`);
});

t.test('etcd down for 10 s: serving goes on, no scale-down, a leader again once etcd is back', async (t) => {
  const { etcd, f, gws, loads } = await threeScaledToFour(t);
  const leader = await leaderOf(gws);

  // Only the leader's own load goes away: its own view says 1 replica, the followers' reports cannot reach it.
  await etcd.kill();
  const downAt = Date.now();
  loads[gws.indexOf(leader)]!.set(0);
  const callsBefore = (await scaleCalls(f.calls)).length;
  await waitFor(() => Date.now() - downAt >= 10_000, 12_000, 'ten seconds', 200);
  t.equal((await scaleCalls(f.calls)).length, callsBefore, 'no scaler call while etcd was down');
  await etcd.restart();
  const failedWhileDown = loads.map((l) => l.failed);
  t.same(failedWhileDown, [0, 0, 0], 'every gateway kept serving');
  t.ok(loads.every((l, i) => gws[i] === leader || l.ok > 0));
  const again = await leaderOf(gws);
  t.ok(again, 'a leader again after etcd came back');
});

t.test('scale from zero through a follower: the request is held there, the leader scales, the request is answered', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const up = await slowUpstream(10);
  t.teardown(() => up.close());
  const dir = await mkdtemp(join(tmpdir(), 'gantry-fleet-eps-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const endpoints = join(dir, 'endpoints.yaml');
  await writeFile(endpoints, 'api: []\n');
  // The scale command also lists the instance (the upstream) once there is one, as a real orchestrator's discovery would.
  const f = await files(t, 0, `if [ "$2" -gt 0 ]; then echo 'api: ["${up.url}"]' > ${endpoints}.tmp && mv ${endpoints}.tmp ${endpoints}; fi`);
  const service = `    discovery: { type: file, path: ${endpoints}, pollIntervalMs: 200 }`;
  const config = (name: string) => gatewayConfig(name, etcd, f, service).replace('      min: 1\n', '      min: 0\n');
  const gws = await Promise.all(['gw-a', 'gw-b'].map((name) => spawnGateway(config(name))));
  t.teardown(() => Promise.all(gws.map((g) => g.kill())));
  const leader = await leaderOf(gws);
  const follower = gws.find((g) => g !== leader)!;
  const res = await fetch(`http://127.0.0.1:${follower.port}/`, { signal: AbortSignal.timeout(20_000) })
    .catch(async (err: Error) => { throw new Error(`${err.message}: ${await readFile(f.script, 'utf8')} ${await readFile(endpoints, 'utf8')} ${JSON.stringify(gws.map((g) => g.logs.filter((l) => l.event !== 'started')))}`); });
  t.equal(res.status, 200, 'the first request, held on the follower, is answered');
  const calls = await scaleCalls(f.calls);
  t.same(calls.map((c) => c.replicas), [1]);
  t.equal(calls[0]!.instance, (await fleetOf(leader.adminPort!)).self, 'the leader scaled from zero');
});

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

function gantry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

t.test('two gateways on different configs: gantry fleet status and /admin/fleet flag the one that differs', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const up = await slowUpstream(10);
  t.teardown(() => up.close());
  const f = await files(t, 1);
  const service = `    discovery: { type: static, endpoints: ["${up.url}"] }`;
  // One file for both, as a fleet shares it: each gateway is named after its host and pid.
  const text = gatewayConfig(null, etcd, f, service);
  const same = await spawnGateway(text);
  t.teardown(() => same.kill());
  const other = await spawnGateway(`${text}  - match: { path: /other }\n    service: api\n`);
  t.teardown(() => other.kill());
  const [a, b] = [(await fleetOf(same.adminPort!)).self, (await fleetOf(other.adminPort!)).self];
  t.match(a, /-\d+$/, 'the default instance is hostname-pid');
  await leaderOf([same]);
  await waitFor(async () => (await fleetOf(same.adminPort!)).gateways.length === 2, 10_000, 'both reports', 100);

  const status = await gantry(['fleet', 'status', '-c', same.file]);
  t.equal(status.code, 2, `exit 2 when configs differ: ${status.stderr}`);
  t.match(status.stdout, `fleet test-fleet: 2 gateways, leader ${a}`);
  t.match(status.stdout, new RegExp(`${b} +[0-9a-f]{12} \\(differs\\)`), status.stdout);
  t.notMatch(status.stdout, new RegExp(`${a} .*\\(differs\\)`));
  const json = JSON.parse((await gantry(['fleet', 'status', '-c', same.file, '--json'])).stdout) as { configMismatch: string[] };
  t.same(json.configMismatch, [b]);
  t.same((await fleetOf(other.adminPort!)).gateways.filter((g) => g.configDiffers).map((g) => g.instance), [b], '/admin/fleet says the same');

  await other.rewrite(text);
  other.child.kill('SIGHUP');
  await waitFor(async () => (await gantry(['fleet', 'status', '-c', same.file])).code === 0, 15_000, 'the same config after a reload', 200)
    .catch(async (err: Error) => { throw new Error(`${err.message}: ${(await gantry(['fleet', 'status', '-c', same.file])).stdout} ${JSON.stringify(other.logs.slice(-5))}`); });
});

t.test('a gateway with --workers is one member: its primary reports the workers\' sum, and its workers show the fleet', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const up = await slowUpstream(200);
  t.teardown(() => up.close());
  const f = await files(t, 1);
  const service = `    discovery: { type: static, endpoints: ["${up.url}"] }`;
  const single = await spawnGateway(gatewayConfig('gw-a', etcd, f, service));
  t.teardown(() => single.kill());
  await leaderOf([single]);
  const cluster = await spawnGateway(gatewayConfig('gw-b', etcd, f, service), ['--workers', '2']);
  t.teardown(() => cluster.kill());
  await workersReady(cluster, 2);
  const loads = [new ClosedLoad(single.port), new ClosedLoad(cluster.port)];
  t.teardown(() => loads.forEach((l) => l.stop()));
  // 3 + 6 in flight (the kernel spreads the cluster's connections over its workers): 9 at 2.5 per replica needs 4.
  loads[0]!.set(3);
  loads[1]!.set(6);
  await waitFor(async () => (await scaleCalls(f.calls)).at(-1)?.replicas === 4, 20_000, 'scaled to 4', 100)
    .catch(async (err: Error) => { throw new Error(`${err.message}; calls ${JSON.stringify(await scaleCalls(f.calls))} ${reasons([single, cluster])}`); });
  const calls = await scaleCalls(f.calls);
  t.same([...new Set(calls.map((c) => c.instance))], ['gw-a'], 'the leader alone called the scaler');
  const seen = await waitFor(async () => {
    const s = await fleetOf(cluster.adminPort!);
    return s.gateways.length === 2 ? s : false;
  }, 5000, 'the fleet on a worker', 100);
  t.same([seen.self, seen.leader], ['gw-b', 'gw-a'], 'a worker\'s /admin/fleet is its primary\'s view');
  t.same(loads.map((l) => l.failed), [0, 0]);
});
