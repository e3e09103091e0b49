import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { getOnNewConnection as get } from '../helpers/get-new-connection.js';
import { spawnGateway, workersReady, type GatewayProcess } from '../helpers/gateway-process.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

function config(endpoints: readonly string[], check: string): string {
  return `listen: 127.0.0.1:0
admin: null
log: { level: info, access: true }
services:
  svc:
    discovery: { type: static, endpoints: ${JSON.stringify(endpoints)} }
    balancer: round-robin
    healthCheck: { path: /health, ${check} }
routes:
  - { name: app, match: { path: /app }, service: svc }
`;
}

/** An upstream that answers its health path with `health()` and everything else 200. */
async function upstream(health: () => number): Promise<RecordingUpstream> {
  return startRecordingUpstream((req, res) => {
    res.writeHead(req.url === '/health' ? health() : 200, { 'content-length': '2' });
    res.end('ok');
  });
}

const served = (up: RecordingUpstream) => up.requests.filter((r) => r.url === '/app').length;
const probes = (up: RecordingUpstream) => up.requests.filter((r) => r.url === '/health');

/** GET /app on new connections until every worker in `workers` answered `each` of them (access lines); returns how many. */
async function throughWorkers(gw: GatewayProcess, workers: readonly unknown[], each: number): Promise<number> {
  const from = gw.logs.length;
  let sent = 0;
  const done = () => workers.every((w) => gw.logs.slice(from).filter((l) => l.log === 'access' && l.worker === w).length >= each);
  while (!done()) {
    if (sent === 400) throw new Error(`workers ${workers.join(', ')} did not each answer ${each} requests in ${sent}`);
    const { status } = await get(gw.port, '/app');
    if (status !== 200) throw new Error(`GET /app answered ${status}`);
    sent++;
  }
  return sent;
}

t.test('with --workers 2 the endpoints are probed once per interval, by the primary alone', async (t) => {
  const up = await upstream(() => 200);
  const intervalMs = 500;
  const gw = await spawnGateway(config([up.url], `intervalMs: ${intervalMs}, timeoutMs: 400, healthyThreshold: 1, unhealthyThreshold: 2`), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  const first = probes(up).length;
  const startedAt = Date.now();
  await waitFor(() => probes(up).length >= first + 8, 20_000, '8 probes');
  // One prober's 8 probes are 7 delays of at least 0.9 × the interval apart (its jitter); a prober per worker sends
  // them in about half that. A busy machine only spreads them further.
  const elapsedMs = Date.now() - startedAt;
  t.ok(elapsedMs >= 7 * 0.9 * intervalMs - 100, `8 probes took ${elapsedMs} ms: one prober at ${intervalMs} ms, not one per worker`);
});

t.test('an endpoint failing its checks leaves the rotation of every worker, and a replaced worker starts without it', async (t) => {
  let bHealth = 200;
  const a = await upstream(() => 200);
  const b = await upstream(() => bHealth);
  // Slow checks: a worker that probed for itself would take 2 × 2 s to take b out after it starts.
  const gw = await spawnGateway(config([a.url, b.url], 'intervalMs: 2000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 2'), ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await a.close(); await b.close(); });
  await workersReady(gw, 2);
  const workers = gw.logs.filter((l) => l.event === 'worker-ready').map((l) => l.worker);
  await throughWorkers(gw, workers, 2);
  t.ok(served(b) > 0, 'b takes traffic while it passes its checks');

  bHealth = 503;
  const out = await gw.waitForLog((l) => l.event === 'endpoint-unhealthy', 20_000);
  t.match(out, { endpoint: b.url, reason: 'status 503', component: 'health-checks' }, 'the primary took b out, with the reason');
  t.equal(out.worker, undefined, 'no worker checks by itself');
  const before = served(b);
  const sent = await throughWorkers(gw, workers, 5);
  t.equal(served(b), before, `none of ${sent} requests through both workers reached b`);

  const victim = gw.logs.find((l) => l.event === 'worker-ready')!;
  const readyBefore = gw.logs.filter((l) => l.event === 'worker-ready').length;
  process.kill(victim.pid as number, 'SIGKILL');
  await workersReady(gw, readyBefore + 1, 30_000);
  const replacement = gw.logs.filter((l) => l.event === 'worker-ready').at(-1)!.worker;
  const sentToNew = await throughWorkers(gw, [replacement], 5);
  t.equal(served(b), before, `none of ${sentToNew} requests, 5 of them through the new worker at once, reached b`);

  bHealth = 200;
  await gw.waitForLog((l) => l.event === 'endpoint-healthy', 20_000);
  await waitFor(async () => { await get(gw.port, '/app'); return served(b) > before; }, 20_000, 'b back in rotation');
  t.pass('b is back once its checks pass');
});
