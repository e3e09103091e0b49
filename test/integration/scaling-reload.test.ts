import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startGateway } from '../helpers/gateway-under-test.js';
import { runLoad } from '../helpers/load.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { waitFor } from '../helpers/capture-log.js';

const INSTANCE = fileURLToPath(new URL('../fixtures/scaling-instance.js', import.meta.url));

function processYaml(version: string, extra = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug, access: false }
services:
  app:
    discovery: { type: scaler }
    scaling:
      scaler: { type: process, command: [node, ${JSON.stringify(INSTANCE)}], env: { VERSION: "${version}" }, healthIntervalMs: 25, stopGraceMs: 2000, output: ignore }
      min: 2
      max: 4
      intervalMs: 200
${extra}routes:
  - match: { path: / }
    service: app
`;
}

t.test('a reload with new scaler options starts a new set of instances before it takes traffic, then stops the old set', async (t) => {
  const gw = await startGateway(processYaml('1'));
  t.teardown(() => gw.close());
  const before = gw.gateway.current().services.get('app')?.pool.endpoints.map((e) => e.address) ?? [];
  t.equal(before.length, 2, 'min 2 running at start');
  const load = runLoad({ url: `${gw.url}/x`, connections: 4, duration: 3 });
  await new Promise((r) => setTimeout(r, 500));
  await gw.rewrite(processYaml('2'));
  const outcome = await gw.gateway.reload();
  t.equal(outcome.result, 'applied');
  const after = gw.gateway.current().services.get('app')?.pool.endpoints.map((e) => e.address) ?? [];
  t.equal(after.length, 2, 'the new config warmed on two new instances');
  t.same(after.filter((a) => before.includes(a)), [], 'all new');
  const result = await load;
  t.equal(result.errors + result.non2xx + result.timeouts, 0, `${result.requests.total} requests through the reload, none failed`);
  await waitFor(() => gw.logs.filter((l) => l.event === 'instance-stopping').length >= 2, 10_000, 'the old instances stopping', 20);
  t.equal(gw.logs.filter((l) => l.event === 'instance-stopping').length, 2, 'the old set was stopped once the old config retired');
  t.equal(gw.gateway.scaling.status()[0]?.current, 2);

  // A reload that leaves the scaler alone keeps its instances.
  await gw.rewrite(processYaml('2', '      max: 5\n').replace('      max: 4\n', ''));
  t.equal((await gw.gateway.reload()).result, 'applied');
  t.same(gw.gateway.current().services.get('app')?.pool.endpoints.map((e) => e.address), after, 'same instances');
  t.equal(gw.gateway.scaling.status()[0]?.max, 5, 'new bounds apply');
});

t.test('an orchestrator that hangs never touches forwarding', async (t) => {
  const up = await startRecordingUpstream();
  t.teardown(() => up.close());
  // A webhook that accepts connections and never answers.
  const sockets = new Set<import('node:net').Socket>();
  const hook = http.createServer(() => {});
  hook.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  hook.listen(0, '127.0.0.1');
  await once(hook, 'listening');
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); hook.close(() => resolve()); }));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/scale`;
  const gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug, access: false }
services:
  svc:
    discovery: { type: static, endpoints: ["${up.url}"] }
    scaling:
      scaler: { type: webhook, url: "${hookUrl}", secret: "0123456789abcdef0123", timeoutMs: 5000 }
      intervalMs: 100
      callTimeoutMs: 300
      backoff: { initialMs: 100, maxMs: 400 }
routes:
  - match: { path: / }
    service: svc
`);
  t.teardown(() => gw.close());
  const result = await runLoad({ url: `${gw.url}/x`, connections: 10, duration: 2 });
  t.ok(result.requests.total > 100, `${result.requests.total} requests`);
  t.equal(result.errors + result.non2xx + result.timeouts, 0, 'no request failed');
  const status = gw.gateway.scaling.status()[0];
  t.ok((status?.consecutiveFailures ?? 0) >= 2, `the scaler kept failing (${status?.consecutiveFailures}) and backing off`);
  t.match(status?.lastError, /reading the current replica count: (timed out after 300 ms|.*abort)/i);
  t.ok(sockets.size <= 2, 'at most one call in flight per service (a hanging one plus one being torn down)');
  t.equal(gw.logs.filter((l) => l.event === 'scaler-failed').length, 1, 'one warning while it stays down');
});
