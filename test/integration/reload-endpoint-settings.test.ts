import t, { type Test } from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

function yaml(endpoints: string, service: string): string {
  return `listen: 127.0.0.1:0
log: { level: info, access: false }
services:
  svc:
    discovery: { type: static, endpoints: ${endpoints} }
    retry: { attempts: 0 }
${service}routes:
  - { match: { path: / }, service: svc }
`;
}

const BREAKER_ON = '    circuitBreaker: { consecutiveFailures: 2, halfOpenAfterMs: 60000 }\n';
const BREAKER_OFF = '    circuitBreaker: { enabled: false }\n';
const CHECKS = '    healthCheck: { path: /health, intervalMs: 100, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 2 }\n';

/** An upstream that answers its name and the client port of the connection (/fail: resets the connection). */
function upstream(name: string, healthy = () => true): Promise<RecordingUpstream> {
  return startRecordingUpstream((req, res) => {
    if (req.url === '/fail') { req.socket.destroy(); return; }
    if (req.url === '/health') { res.writeHead(healthy() ? 200 : 503); res.end(); return; }
    res.end(`${name} ${req.socket.remotePort}`);
  });
}

async function get(gw: GatewayUnderTest, path = '/'): Promise<{ status: number; body: string }> {
  const r = await fetch(`${gw.url}${path}`);
  return { status: r.status, body: await r.text() };
}

/** Who answered each of `n` requests. */
async function answers(gw: GatewayUnderTest, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await get(gw)).body.split(' ')[0]!);
  return out;
}

const hits = (...ups: RecordingUpstream[]) => ups.reduce((n, u) => n + u.requests.filter((r) => r.url === '/fail').length, 0);

async function prepareAndAbort(t: Test, gw: GatewayUnderTest, text: string): Promise<void> {
  await gw.rewrite(text);
  const prepared = await gw.gateway.prepareReload();
  t.equal(prepared.outcome.result, 'applied', 'the new file was prepared');
  prepared.abort();
}

t.test('an aborted reload leaves the connection pool and the breaker of the serving endpoints as they were', async (t) => {
  const a = await upstream('a');
  const gw = await startGateway(yaml(`["${a.url}"]`, `    connectTimeoutMs: 2000\n${BREAKER_ON}`));
  t.teardown(async () => { await gw.close(); await a.close(); });
  const first = (await get(gw)).body;

  // Same discovery (a shared pool): new socket settings and no breaker, thrown away.
  await prepareAndAbort(t, gw, yaml(`["${a.url}"]`, `    connectTimeoutMs: 1500\n${BREAKER_OFF}`));
  t.equal(gw.gateway.current().generation, 1);
  t.equal((await get(gw)).body, first, 'the same connection pool: the request reuses its connection');

  await get(gw, '/fail');
  await get(gw, '/fail');
  t.equal((await get(gw, '/fail')).status, 503, 'the breaker still opens after two failures');
  t.equal(hits(a), 2, 'and the third request did not reach the upstream');
});

t.test('an aborted reload leaves the health checks running, and the endpoints they took out out', async (t) => {
  let bHealthy = false;
  const a = await upstream('a');
  const b = await upstream('b', () => bHealthy);
  const endpoints = `["${a.url}", "${b.url}"]`;
  const gw = await startGateway(yaml(endpoints, `    balancer: round-robin\n${CHECKS}`));
  t.teardown(async () => { await gw.close(); await a.close(); await b.close(); });
  await waitFor(() => gw.logs.some((l) => l.event === 'endpoint-unhealthy'), 5000, 'b out of rotation');

  await prepareAndAbort(t, gw, yaml(endpoints, '    balancer: round-robin\n'));
  t.same(await answers(gw, 4), ['a', 'a', 'a', 'a'], 'b, failing its checks, is still out');
  bHealthy = true;
  await waitFor(() => gw.logs.some((l) => l.event === 'endpoint-healthy'), 5000, 'the checks bringing b back');
  t.same((await answers(gw, 4)).sort(), ['a', 'a', 'b', 'b'], 'the checks still run: b passing is back');
});

t.test('an aborted reload leaves the weights; a committed one applies them', async (t) => {
  const a = await upstream('a');
  const b = await upstream('b');
  const weighted = (wa: number) => yaml(`[{ url: "${a.url}", weight: ${wa} }, "${b.url}"]`, '    balancer: weighted-round-robin\n');
  const gw = await startGateway(weighted(1));
  t.teardown(async () => { await gw.close(); await a.close(); await b.close(); });
  t.same((await answers(gw, 4)).sort(), ['a', 'a', 'b', 'b']);

  await prepareAndAbort(t, gw, weighted(3));
  t.same((await answers(gw, 4)).sort(), ['a', 'a', 'b', 'b'], 'still 1:1 after the abort');

  t.equal((await gw.gateway.reload()).result, 'applied');
  t.same((await answers(gw, 4)).sort(), ['a', 'a', 'a', 'b'], '3:1 once committed');
});

t.test('a reload that changes the discovery and disables the breaker: the endpoint it keeps has no breaker', async (t) => {
  const a = await upstream('a');
  const gw = await startGateway(yaml(`["${a.url}"]`, BREAKER_ON));
  t.teardown(async () => { await gw.close(); await a.close(); });
  await gw.rewrite(yaml(`[{ url: "${a.url}", weight: 2 }]`, BREAKER_OFF));
  t.equal((await gw.gateway.reload()).result, 'applied');
  for (let i = 0; i < 4; i++) t.not((await get(gw, '/fail')).status, 503, `failure ${i + 1} is not turned away`);
  t.equal(hits(a), 4, 'every failing request reached the upstream: no breaker opened');
});

t.test('a reload that changes the discovery and enables the breaker: the kept and the new endpoint both get one', async (t) => {
  const a = await upstream('a');
  const b = await upstream('b');
  const gw = await startGateway(yaml(`["${a.url}"]`, BREAKER_OFF));
  t.teardown(async () => { await gw.close(); await a.close(); await b.close(); });
  await gw.rewrite(yaml(`["${a.url}", "${b.url}"]`, BREAKER_ON));
  t.equal((await gw.gateway.reload()).result, 'applied');
  for (let i = 0; i < 6; i++) await get(gw, '/fail');
  t.equal(hits(a), 2, 'a: its breaker opened after two failures');
  t.equal(hits(b), 2, 'b: likewise');
  t.equal((await get(gw, '/fail')).status, 503, 'both open: turned away');
});

t.test('a reload that changes the discovery and turns the health checks off puts an endpoint failing them back', async (t) => {
  const a = await upstream('a');
  const b = await upstream('b', () => false);
  const gw = await startGateway(yaml(`["${a.url}", "${b.url}"]`, `    balancer: round-robin\n${CHECKS}`));
  t.teardown(async () => { await gw.close(); await a.close(); await b.close(); });
  await waitFor(() => gw.logs.some((l) => l.event === 'endpoint-unhealthy'), 5000, 'b out of rotation');
  t.same(await answers(gw, 4), ['a', 'a', 'a', 'a']);

  await gw.rewrite(yaml(`["${a.url}", { url: "${b.url}", weight: 1 }]`, '    balancer: round-robin\n'));
  t.equal((await gw.gateway.reload()).result, 'applied');
  t.same((await answers(gw, 4)).sort(), ['a', 'a', 'b', 'b'], 'without checks, b is in rotation');
});
