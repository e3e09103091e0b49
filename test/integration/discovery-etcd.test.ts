import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import t from 'tap';
import { decodeEndpointValue, encodeEndpointValue } from '../../plugins/discovery/etcd.js';
import { registrationKey } from '../../plugins/discovery/etcd-register.js';
import { waitFor } from '../helpers/capture-log.js';
import { startCountingUpstream } from '../helpers/counting-upstream.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { runLoad } from '../helpers/load.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));
const PREFIX = '/gantry/services/users/';

function gatewayYaml(etcd: EtcdServer): string {
  return `listen: 127.0.0.1:0
log: { level: debug, access: false }
services:
  users:
    discovery: { type: etcd, hosts: ["${etcd.url}"], dialTimeoutMs: 500, requestTimeoutMs: 1000 }
    warmTimeoutMs: 3000
routes:
  - { match: { path: / }, service: users }
`;
}

const key = (address: string) => `${PREFIX}${new URL(address).host}`;
const value = (address: string, weight = 1) => encodeEndpointValue({ address, weight });

t.test('endpoint values: JSON with weight and metadata, or a bare URL or host:port', async (t) => {
  t.same(decodeEndpointValue('{"address":"http://127.0.0.1:1","weight":2,"metadata":{"zone":"a"}}', 'http'),
    { address: 'http://127.0.0.1:1', weight: 2, metadata: { zone: 'a' } });
  t.same(decodeEndpointValue('127.0.0.1:8443', 'https'), { address: 'https://127.0.0.1:8443', weight: 1 });
  t.same(decodeEndpointValue(' http://[::1]:80 ', 'https'), { address: 'http://[::1]:80', weight: 1 });
  t.throws(() => decodeEndpointValue('{"address":1}', 'http'), /"address" must be a string/);
  t.throws(() => decodeEndpointValue('{"address":"http://h:1","weight":0}', 'http'), /weight/);
  t.throws(() => decodeEndpointValue('{"address":"http://h:1"', 'http'), SyntaxError);
  t.equal(registrationKey({ service: 'users', endpoint: { address: 'http://127.0.0.1:80', weight: 1 } }), '/gantry/services/users/127.0.0.1:80');
  t.equal(registrationKey({ service: 'x', prefix: '/p/', id: 'i-1', endpoint: { address: 'http://h:1', weight: 1 } }), '/p/i-1');
});

t.test('etcd: keys added and removed under load move traffic with 0 failed requests', async (t) => {
  const etcd = await startEtcd();
  const client = new Etcd3({ hosts: etcd.url });
  const [a, b] = await Promise.all([startCountingUpstream(), startCountingUpstream()]);
  await client.put(key(a.address)).value(value(a.address));
  await client.put(`${PREFIX}garbage`).value('not an endpoint {');
  const gw = await startGateway(gatewayYaml(etcd));
  t.teardown(async () => { await gw.close(); client.close(); await etcd.stop(); await a.close(); await b.close(); });
  const pool = gw.gateway.current().services.get('users')!.pool;
  t.same(pool.endpoints.map((e) => e.address), [a.address], 'listed before taking traffic; the bad key is skipped');
  t.ok(gw.logs.some((l) => l.key === `${PREFIX}garbage` && /not an endpoint/.test(String(l.msg))), 'and logged');

  const load = runLoad({ url: `${gw.url}/`, connections: 8, duration: 4 });
  await new Promise((r) => setTimeout(r, 1000));
  const putAt = Date.now();
  await client.put(key(b.address)).value(value(b.address));
  await new Promise((r) => setTimeout(r, 1200));
  const deleteAt = Date.now();
  const aBefore = a.hits();
  await client.delete().key(key(a.address));
  const result = await load;

  const movedMs = (b.firstHitAfter(putAt) ?? Infinity) - putAt;
  const lastA = (a.lastHit() ?? 0) - deleteAt;
  t.equal(result.errors, 0, 'no socket errors');
  t.equal(result.timeouts, 0, 'no timeouts');
  t.equal(result.non2xx, 0, 'no failed responses');
  // Enough traffic to see it move; not a speed bar (bench/ measures speed).
  t.ok(result.requests.total > 300, `${result.requests.total} requests in 4 s`);
  t.ok(movedMs < 500, `traffic reached the added endpoint ${movedMs} ms after the put`);
  t.ok(lastA < 500, `the removed endpoint's last request arrived ${lastA} ms after the delete`);
  t.ok(a.hits() - aBefore < result.requests.total / 10, 'and it got almost nothing after the delete');
  t.same(pool.endpoints.map((e) => e.address), [b.address]);
});

t.test('etcd stopped: keeps serving on the last endpoints; restarted: the watch resumes', async (t) => {
  const etcd = await startEtcd();
  const client = new Etcd3({ hosts: etcd.url });
  const [a, b, c] = await Promise.all([startCountingUpstream(), startCountingUpstream(), startCountingUpstream()]);
  await client.put(key(a.address)).value(value(a.address));
  await client.put(key(b.address)).value(value(b.address, 2));
  const gw = await startGateway(gatewayYaml(etcd));
  t.teardown(async () => { await gw.close(); client.close(); await etcd.stop(); await Promise.all([a, b, c].map((u) => u.close())); });
  const pool = gw.gateway.current().services.get('users')!.pool;
  t.equal(pool.endpoints.length, 2);

  await etcd.kill();
  await waitFor(() => !pool.status.up, 5000, 'discovery down');
  t.match(pool.status, { up: false, endpoints: 2, lastError: /etcd watch/ });
  const down = await runLoad({ url: `${gw.url}/`, connections: 4, amount: 400 });
  t.equal(down.non2xx + down.errors, 0, 'every request served while etcd is down');
  t.equal(pool.endpoints.length, 2, 'never swapped to an empty set');
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(gw.logs.filter((l) => l.event === 'discovery-down').length, 1, 'one log line, however many re-watches failed');
  t.ok(pool.status.failures > 1, `re-watched ${pool.status.failures} times with backoff`);

  const restartedAt = Date.now();
  await etcd.restart();
  await waitFor(() => pool.status.up, 15_000, 'discovery up again');
  t.pass(`up again ${Date.now() - restartedAt} ms after etcd was restarted`);
  const putAt = Date.now();
  await client.put(key(c.address)).value(value(c.address));
  await waitFor(() => pool.endpoints.length === 3, 3000, 'new key');
  t.pass(`a key put after the restart is seen in ${Date.now() - putAt} ms`);
  t.equal(gw.logs.filter((l) => l.event === 'discovery-up').length, 2);
});

t.test('etcd down for 5 s and back: a key deleted after the restart stops taking traffic within 3 s', async (t) => {
  const etcd = await startEtcd();
  const setup = new Etcd3({ hosts: etcd.url });
  const [a, b] = await Promise.all([startCountingUpstream(), startCountingUpstream()]);
  await setup.put(key(a.address)).value(value(a.address));
  await setup.put(key(b.address)).value(value(b.address));
  setup.close();
  const gw = await startGateway(gatewayYaml(etcd));
  t.teardown(async () => { await gw.close(); await etcd.stop(); await a.close(); await b.close(); });
  const pool = gw.gateway.current().services.get('users')!.pool;
  t.equal(pool.endpoints.length, 2);

  await etcd.kill();
  await waitFor(() => !pool.status.up, 5000, 'discovery down');
  // The outage itself (5 s, as a restarted etcd member takes), noting when each re-watch failed.
  const failedAt: number[] = [];
  const outageEnds = Date.now() + 5000;
  await waitFor(() => {
    const at = pool.status.lastErrorAt;
    if (at !== null && at !== failedAt.at(-1)) failedAt.push(at);
    return Date.now() >= outageEnds;
  }, 10_000, 'the outage');
  const gapsMs = failedAt.slice(1).map((at, i) => at - failedAt[i]!);
  t.ok(Math.max(...gapsMs) < 2000, `re-watched while down every ${gapsMs.join(', ')} ms: never more than 1 s of backoff`);
  await etcd.restart();
  const healthyAt = Date.now();
  // A fresh client: the first one's gRPC channel would be in its own reconnect backoff.
  const client = new Etcd3({ hosts: etcd.url });
  t.teardown(() => client.close());
  await client.delete().key(key(a.address));
  await waitFor(() => pool.endpoints.length === 1, 20_000, 'the deleted key followed');
  const followedMs = Date.now() - healthyAt;
  t.ok(followedMs < 3000, `the pool dropped the deleted key ${followedMs} ms after etcd was healthy again`);
  const aBefore = a.hits();
  for (let i = 0; i < 6; i++) t.equal((await fetch(`${gw.url}/`)).status, 200);
  t.equal(a.hits(), aBefore, 'and the deleted endpoint gets no more requests');
});

t.test('gantry register: the endpoint is listed while its process lives, gone when the lease expires after a kill', async (t) => {
  const etcd = await startEtcd();
  const a = await startCountingUpstream();
  const b = await startCountingUpstream();
  const gw = await startGateway(gatewayYaml(etcd).replace('warmTimeoutMs: 3000', 'warmTimeoutMs: 0'));
  const children: ReturnType<typeof spawn>[] = [];
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await gw.close(); await etcd.stop(); await a.close(); await b.close();
  });
  const pool = gw.gateway.current().services.get('users')!.pool;
  const register = (address: string, extra: string[] = []) => {
    const child = spawn(process.execPath, [CLI, 'register', '--etcd', etcd.url, '--service', 'users', '--address', address, '--ttl', '2', ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, exited, out: () => out };
  };

  const killed = register(a.address, ['--meta', 'zone=a']);
  await waitFor(() => pool.endpoints.some((e) => e.address === a.address), 10_000, 'registered endpoint');
  t.equal((await fetch(`${gw.url}/`)).status, 200);
  t.equal(a.hits(), 1);
  killed.child.kill('SIGKILL');
  const killedAt = Date.now();
  await waitFor(() => pool.endpoints.length === 0, 8000, 'lease expiry');
  const goneMs = Date.now() - killedAt;
  t.ok(goneMs >= 1000, `still listed for ${goneMs} ms after the kill: the lease, not the process, decides`);
  t.ok(goneMs < 6000, `gone ${goneMs} ms after the kill (TTL 2 s)`);

  const graceful = register(b.address);
  await waitFor(() => pool.endpoints.some((e) => e.address === b.address), 10_000, 'second registration');
  graceful.child.kill('SIGTERM');
  const termAt = Date.now();
  t.equal(await graceful.exited, 0);
  await waitFor(() => pool.endpoints.length === 0, 2000, 'revoked');
  t.ok(Date.now() - termAt < 1500, `SIGTERM revokes the lease: gone in ${Date.now() - termAt} ms`);
  t.match(graceful.out(), /"event":"deregistered"/);

  const wrapped = register(b.address, ['--', process.execPath, '-e', 'setTimeout(() => process.exit(3), 1500)']);
  await waitFor(() => pool.endpoints.length === 1, 10_000, 'registered while the command runs');
  t.equal(await wrapped.exited, 3, 'the command\'s exit code');
  await waitFor(() => pool.endpoints.length === 0, 2000, 'deregistered when the command exited');
});
