import http from 'node:http';
import { runLoad } from '../helpers/load.js';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

function config(upstream: string, variant: 'a' | 'b', extraRoute = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: info, access: false }
services:
  svc:
    discovery: { type: static, endpoints: ["${upstream}"] }
    timeoutMs: ${variant === 'a' ? 5000 : 6000}
routes:
  - { name: both, match: { path: /both }, service: svc }
  - { name: only-${variant}, match: { path: /only-${variant} }, service: svc }
${extraRoute}`;
}

t.test('a reload swaps the routes; an unchanged file is a no-op; endpoint sockets survive', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(config(up.url, 'a'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  t.equal((await fetch(`${gw.url}/only-a`)).status, 200);
  const pool = gw.gateway.current().services.get('svc')!.pool.endpoints[0]!.pool;

  await gw.rewrite(config(up.url, 'b'));
  const applied = await gw.gateway.reload();
  t.match(applied, { result: 'applied', generation: 2, changes: { routes: { added: ['only-b'], removed: ['only-a'], changed: [] }, services: { changed: ['svc'] } } });
  t.equal((await fetch(`${gw.url}/only-a`)).status, 404);
  t.equal((await fetch(`${gw.url}/only-b`)).status, 200);
  t.equal(gw.gateway.current().services.get('svc')!.pool.endpoints[0]!.pool, pool, 'the endpoint kept its connection pool');
  t.equal(up.openSockets(), 1, 'and its pooled socket');

  t.match(await gw.gateway.reload(), { result: 'unchanged', generation: 2 });
});

t.test('an invalid file is refused with file:line:col, and the old config keeps serving', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(config(up.url, 'a'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  await gw.rewrite(config(up.url, 'a', '  - { match: { path: /x }, service: missing }\n'));
  const outcome = await gw.gateway.reload();
  t.equal(outcome.result, 'refused');
  const line = gw.logs.find((l) => l.event === 'reload-refused');
  t.match(String(line?.msg), /still serving generation 1: .*routes\.yaml:11:37: routes\[2\]\.service: unknown service "missing"/);
  t.equal((await fetch(`${gw.url}/only-a`)).status, 200);
  t.equal(gw.gateway.current().generation, 1);
});

t.test('a request in flight finishes on the config it started with', async (t) => {
  const up = await startRecordingUpstream((req, res) => setTimeout(() => res.end(`done ${req.url}`), 300));
  const gw = await startGateway(config(up.url, 'a'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const inFlight = fetch(`${gw.url}/only-a/slow`).then(async (r) => [r.status, await r.text()]);
  await new Promise((r) => setTimeout(r, 50));
  await gw.rewrite(config(up.url, 'b'));
  t.equal((await gw.gateway.reload()).result, 'applied');
  t.same(await inFlight, [200, 'done /only-a/slow']);
});

t.test('a reload that changes the connection settings: the request in flight ends on the old pool, which then closes', async (t) => {
  // Each upstream connection is named by its client port; /slow is held until the test lets it go.
  let release: (() => void) | undefined;
  const up = await startRecordingUpstream((req, res) => {
    const port = String(req.socket.remotePort);
    if (req.url === '/only-a/slow') release = () => res.end(port);
    else res.end(port);
  });
  const withTimeout = (ms: number) => config(up.url, 'a').replace('timeoutMs: 5000', `timeoutMs: 5000\n    connectTimeoutMs: ${ms}`);
  const gw = await startGateway(withTimeout(2000));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const first = await (await fetch(`${gw.url}/only-a`)).text();
  const pool = gw.gateway.current().services.get('svc')!.pool.endpoints[0]!.pool;
  const slow = fetch(`${gw.url}/only-a/slow`).then(async (r) => [r.status, await r.text()]);
  await waitFor(() => release !== undefined, 2000, 'the held request upstream');
  const held = up.requests.length;

  await gw.rewrite(withTimeout(1500));
  t.equal((await gw.gateway.reload()).result, 'applied');
  t.not(gw.gateway.current().services.get('svc')!.pool.endpoints[0]!.pool, pool, 'the endpoint has a new connection pool');
  const after = await (await fetch(`${gw.url}/only-a`)).text();
  t.not(after, first, 'a new request goes over a new connection');
  t.equal(up.requests.length, held + 1);
  t.equal(up.openSockets(), 2, 'the old pool keeps the connection its request runs on');

  release!();
  t.same(await slow, [200, first], 'the held request finished, on the connection the old pool had reused for it');
  await waitFor(() => up.openSockets() <= 1, 2000, 'the old pool closed');
  t.equal(up.openSockets(), 1, 'then the old pool closed its sockets; the new one keeps its own');
  t.equal(await (await fetch(`${gw.url}/only-a`)).text(), after, 'and keeps reusing it');
});

t.test('reloads requested while one runs coalesce into exactly one more run', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(config(up.url, 'a'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  await gw.rewrite(config(up.url, 'a', '  - { name: late, match: { path: /late }, service: svc }\n'));
  const burst = await Promise.all([gw.gateway.reload(), gw.gateway.reload(), gw.gateway.reload(), gw.gateway.reload()]);
  t.ok(burst.every((o) => o === burst[0]), 'every caller gets the same outcome');
  t.match(burst[0], { result: 'applied', generation: 2 }, 'the follow-up run found nothing new');
  t.equal(gw.logs.filter((l) => l.event === 'reloaded').length, 1, 'one swap');
  t.equal(gw.logs.filter((l) => l.event === 'reload-unchanged').length, 1, 'and exactly one more run');
  t.equal((await fetch(`${gw.url}/late`)).status, 200);
});

t.test('a changed listen address is reported as needing a restart', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(config(up.url, 'a'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  await gw.rewrite(config(up.url, 'a').replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:1'));
  t.match(await gw.gateway.reload(), { result: 'applied', changes: { restartRequired: ['listen'] } });
  t.ok(gw.logs.some((l) => l.event === 'restart-required'));
  t.equal((await fetch(`${gw.url}/both`)).status, 200, 'still listening where it was');
});

t.test('100 SIGHUPs alternating two valid configs under load: 0 failed requests', async (t) => {
  const up = await startRecordingUpstream((_req, res) => { res.writeHead(200, { 'content-length': '2' }); res.end('ok'); });
  const gw = await spawnGateway(config(up.url, 'a'));
  t.teardown(async () => { await gw.kill(); await up.close(); });

  const load = runLoad({ url: `http://127.0.0.1:${gw.port}/both`, connections: 16, duration: 6 });
  const files = [config(up.url, 'a'), config(up.url, 'b')];
  for (let i = 0; i < 100; i++) {
    await gw.rewrite(files[(i + 1) % 2]!);
    gw.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 40));
  }
  const result = await load;
  const reloads = gw.logs.filter((l) => l.event === 'reloaded').length;
  t.ok(result.requests.total > 1000, `${result.requests.total} requests during the reloads`);
  t.equal(result.errors, 0, 'no socket errors');
  t.equal(result.timeouts, 0, 'no timeouts');
  t.equal(result.non2xx, 0, 'no non-2xx answers');
  // How many SIGHUPs a run coalesces depends on the machine's speed (on a loaded one, 40 of 100 were applied): what
  // holds is that reloads were applied while the load ran, no more than were asked for, and the last one is live.
  t.ok(reloads >= 2 && reloads <= 100, `${reloads} reloads applied (bursts coalesce)`);
  // After the last SIGHUP, the last file (variant a: i = 99 wrote files[0]) is live.
  // Every reload run ends with its reload-timing line, written a monitor tick after the swap.
  await gw.waitForLog((l) => l.event === 'reload-timing', 5000, gw.logs.length - 1);
  const status = await new Promise<number>((resolve) => http.get(`http://127.0.0.1:${gw.port}/only-a`, (r) => { r.resume(); resolve(r.statusCode ?? 0); }));
  t.equal(status, 200);
});

t.test('an invalid file on SIGHUP under load: 0 failed requests and one error line', async (t) => {
  const up = await startRecordingUpstream((_req, res) => { res.writeHead(200, { 'content-length': '2' }); res.end('ok'); });
  const gw = await spawnGateway(config(up.url, 'a'));
  t.teardown(async () => { await gw.kill(); await up.close(); });
  const load = runLoad({ url: `http://127.0.0.1:${gw.port}/only-a`, connections: 8, duration: 2 });
  await new Promise((r) => setTimeout(r, 300));
  await gw.rewrite('services:\n  svc: { discovery: { type: static, endpoints: [oops] }\nroutes: [\n');
  const sent = Date.now();
  gw.child.kill('SIGHUP');
  const line = await gw.waitForLog((l) => l.event === 'reload-refused');
  t.ok(Date.now() - sent < 1000, 'logged within 1 s');
  t.match(String(line.msg), /routes\.yaml:\d+:\d+: /);
  t.equal(line.level, 'error');
  const result = await load;
  t.equal(result.errors + result.timeouts + result.non2xx, 0, `${result.requests.total} requests, none failed`);
  t.equal(gw.child.exitCode, null, 'the process is still up');
});
