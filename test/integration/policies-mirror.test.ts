/**
 * mirror (docs/policies.md): copies of a share of a route's requests to another service, answers discarded. With the
 * mirror down or hanging, every real request is answered as without it; copies past maxInFlight are dropped and
 * counted. Real upstreams on 127.0.0.1.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { configProblems } from '../helpers/config-problems.js';
import { metricValue, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

function yaml(real: string, shadow: string, mirror: string): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
policies:
  shadow: { mirror: ${mirror} }
services:
  api: { discovery: { type: static, endpoints: ["${real}"] } }
  api-v2: { discovery: { type: static, endpoints: ["${shadow}"] } }
routes:
  - { name: api, match: { path: /api }, service: api, policies: [shadow] }
`;
}

const real = await startRecordingUpstream();
t.teardown(() => real.close());

const outcome = (adminUrl: string, o: string) => metricValue(adminUrl, 'gantry_mirror_requests_total', { policy: 'shadow', outcome: o });

t.test('percent copies an exact share; the copy carries the request head, its answer is discarded', async (t) => {
  const shadow = await startRecordingUpstream((_req, res) => { res.writeHead(500); res.end('shadow answer'); });
  t.teardown(() => shadow.close());
  const g = await startPolicyGateway(yaml(real.url, shadow.url, '{ service: api-v2, percent: 10 }'));
  t.teardown(() => g.close());
  for (let i = 0; i < 100; i++) {
    const r = await send(`${g.url4}/api/items?i=${i}`, { 'x-user': 'u1' });
    t.equal(r.status, 200);
  }
  await waitFor(() => shadow.requests.length === 10, 5000, '10 copies');
  t.equal(shadow.requests[0]?.url.startsWith('/api/items?i='), true);
  t.equal(shadow.requests[0]?.headers['x-user'], 'u1');
  t.equal(await outcome(g.adminUrl, 'sent'), 10);
});

t.test('a request with a body: the copy carries the body the gateway buffered; a body streamed to the upstream is not copied', async (t) => {
  const shadow = await startRecordingUpstream();
  t.teardown(() => shadow.close());
  const g = await startPolicyGateway(yaml(real.url, shadow.url, '{ service: api-v2, percent: 100 }'));
  t.teardown(() => g.close());
  const before = real.requests.length;
  const json = JSON.stringify({ order: 42, items: ['a', 'b'] });
  const posted = await fetch(`${g.url4}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
  t.equal(posted.status, 200);
  await waitFor(() => shadow.requests.length === 1, 5000, 'the copy');
  t.equal(shadow.requests[0]?.method, 'POST');
  t.equal(shadow.requests[0]?.body.toString(), json, 'the copy has the body');
  t.equal(shadow.requests[0]?.headers['content-type'], 'application/json');
  t.equal(real.requests[before]?.body.toString(), json, 'the real upstream has it too');
  // Over the default retry.bufferBodyBytes (64 KiB): streamed once to the real upstream, never held, so not copied.
  const big = Buffer.alloc(200_000, 'x');
  t.equal((await fetch(`${g.url4}/api/upload`, { method: 'POST', body: big })).status, 200);
  t.equal(real.requests.at(-1)?.body.length, big.length, 'the real upstream has the whole large body');
  await waitFor(async () => (await outcome(g.adminUrl, 'skipped')) === 1, 5000, 'the large body counted skipped');
  t.equal(shadow.requests.length, 1, 'no copy of it');
  t.equal(await outcome(g.adminUrl, 'sent'), 1);
});

t.test('a mirror that is down: every real request answered, the copies counted as failed', async (t) => {
  const closed = net.createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));   // nothing listens there now
  const g = await startPolicyGateway(yaml(real.url, `http://127.0.0.1:${port}`, '{ service: api-v2, percent: 100 }'));
  t.teardown(() => g.close());
  for (let i = 0; i < 20; i++) t.equal((await send(`${g.url4}/api/x`)).status, 200);
  await waitFor(async () => (await outcome(g.adminUrl, 'failed')) === 20, 10_000, '20 failed copies');
});

t.test('a mirror that never answers: real requests are not held, copies past maxInFlight are dropped and counted', async (t) => {
  const held: net.Socket[] = [];
  let heads = 0;
  const hanging = net.createServer((s) => { held.push(s); s.on('data', () => { heads++; }); });
  hanging.listen(0, '127.0.0.1');
  await once(hanging, 'listening');
  t.teardown(() => new Promise<void>((r) => { for (const s of held) s.destroy(); hanging.close(() => r()); }));
  const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  const g = await startPolicyGateway(yaml(real.url, url, '{ service: api-v2, percent: 100, maxInFlight: 4, timeoutMs: 60000 }'));
  t.teardown(() => g.close());
  for (let i = 0; i < 30; i++) t.equal((await send(`${g.url4}/api/x`)).status, 200, `request ${i} answered while the mirror hangs`);
  t.equal(await outcome(g.adminUrl, 'sent'), 4);
  t.equal(await outcome(g.adminUrl, 'dropped'), 26);
  await waitFor(() => heads >= 1, 5000, 'the mirror got copies');
});

t.test('a mirror of an unknown service, or a share outside (0, 100], is refused at load', async (t) => {
  t.same(configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  a: { mirror: { service: nope, percent: 10 } }
  b: { mirror: { service: svc, percent: 0 } }
routes:
  - { match: { path: / }, service: svc, policies: [a, b] }
`), [
    'routes.yaml:4:27: policies.a.mirror.service: unknown service "nope" (defined: svc)',
    'routes.yaml:5:41: policies.b.mirror.percent: must be > 0',
  ]);
});
