import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import type { ScalingLoop } from '../../gateway/scaling/scaling-loop.js';
import { waitFor } from '../helpers/capture-log.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body: unknown = null;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body, text };
}

// With `scaled`, users is scaled by a command that reports 1 replica, under a floor of 3: its first evaluation scales
// up. The loop's own tick (every 60 s) does not come during a test; the test evaluates when it wants a decision.
const SCALED = '\n    scaling: { scaler: { type: exec, scale: "true {replicas}", current: "echo 1" }, min: 3, max: 5, intervalMs: 60000 }';

function config(up: string, extraRoutes = '', scaled = false): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: info }
services:
  users:
    discovery: { type: static, endpoints: ["${up}"] }
    balancer: round-robin${scaled ? SCALED : ''}
routes:
  - name: users-api
    match: { path: /api, methods: [GET, POST] }
    service: users
    stripPrefix: true
${extraRoutes}`;
}

async function scrape(gw: GatewayUnderTest) {
  const res = await fetch(`${gw.adminUrl}/metrics`);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parsePromText(await res.text());
}

async function setup(t: Test, scaled = false): Promise<{ up: RecordingUpstream; gw: GatewayUnderTest }> {
  const up = await startRecordingUpstream((req, res) => {
    const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
    if (req.url?.startsWith('/slow')) return void setTimeout(() => res.end('slow'), 400);
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(`upstream saw ${req.url}`);
  });
  const gw = await startGateway(config(up.url, '', scaled));
  t.teardown(async () => { await gw.close(); await up.close(); });
  return { up, gw };
}

/** Writes raw bytes to the gateway and reads until it closes: requests Node's parser refuses never reach a handler. */
async function rawExchange(port: number, bytes: string): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => { text += d; });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer in 5 s')));
  });
}

t.test('errors answered on the raw socket (malformed request, oversized header, CONNECT) are counted like the others: gantry_errors_total and the dashboard\'s table', async (t) => {
  const { gw } = await setup(t);
  const port = Number(new URL(gw.url).port);
  t.match(await rawExchange(port, 'GET /api/ok HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.match(await rawExchange(port, `GET /api/ok HTTP/1.1\r\nHost: a\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  t.match(await rawExchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'), /^HTTP\/1\.1 405 /);
  const s = await scrape(gw);
  t.equal(sampleValue(s, 'gantry_errors_total', { service: '_none', code: 'GW_ERR_BAD_REQUEST' }), 1, 'the malformed request');
  t.equal(sampleValue(s, 'gantry_errors_total', { service: '_none', code: 'GW_ERR_HEADERS_TOO_LARGE' }), 1, 'the oversized header');
  t.equal(sampleValue(s, 'gantry_errors_total', { service: '_none', code: 'GW_ERR_METHOD_NOT_ALLOWED' }), 1, 'CONNECT');
  const stats = (await get(`${gw.adminUrl}/admin/stats`)).body as { gatewayErrors: { code: string; count: number }[] };
  const byCode = Object.fromEntries(stats.gatewayErrors.map((e) => [e.code, e.count]));
  t.same(byCode, { GW_ERR_BAD_REQUEST: 1, GW_ERR_HEADERS_TOO_LARGE: 1, GW_ERR_METHOD_NOT_ALLOWED: 1 }, 'the dashboard\'s gateway errors show them');
});

t.test('metrics after known traffic: requests by class, latency histogram, in flight, errors, discovery', async (t) => {
  const { gw } = await setup(t);
  for (let i = 0; i < 5; i++) t.equal((await get(`${gw.url}/api/ok`)).status, 200);
  t.equal((await get(`${gw.url}/api/x?status=500`)).status, 500);
  t.equal((await get(`${gw.url}/nowhere`)).status, 404);
  t.equal((await get(`${gw.url}/api/x`, { method: 'DELETE' })).status, 405);
  const slow = get(`${gw.url}/api/slow`);
  await new Promise((r) => setTimeout(r, 150));
  let s = await scrape(gw);
  t.equal(sampleValue(s, 'gantry_requests_in_flight', { service: 'users' }), 1, 'the slow request is in flight');
  await slow;

  s = await scrape(gw);
  const total = (labels: Record<string, string>) => sampleValue(s, 'gantry_requests_total', labels);
  t.equal(total({ route: 'users-api', service: 'users', status_class: '2xx' }), 6);
  t.equal(total({ route: 'users-api', service: 'users', status_class: '5xx' }), 1, 'an upstream 500 is a 5xx of its route');
  t.equal(total({ route: '_none', service: '_none', status_class: '4xx' }), 2, 'the 404 and the 405 matched no route');
  t.equal(total({ route: 'users-api', service: 'users', status_class: '4xx' }), undefined);
  t.equal(sampleValue(s, 'gantry_errors_total', { service: '_none', code: 'GW_ERR_NO_ROUTE' }), 1);
  t.equal(sampleValue(s, 'gantry_errors_total', { service: '_none', code: 'GW_ERR_METHOD_NOT_ALLOWED' }), 1);
  t.equal(sampleValue(s, 'gantry_request_duration_seconds_count', { route: 'users-api', service: 'users' }), 7);
  t.ok(sampleValue(s, 'gantry_request_duration_seconds_bucket', { route: 'users-api', le: '0.25' })! <= 6, 'the 400 ms request is above 250 ms');
  t.equal(sampleValue(s, 'gantry_request_duration_seconds_bucket', { route: 'users-api', le: '0.5' }), 7);
  t.equal(sampleValue(s, 'gantry_requests_in_flight', { service: 'users' }), 0);
  t.equal(sampleValue(s, 'gantry_upstream_endpoints', { service: 'users' }), 1);
  t.equal(sampleValue(s, 'gantry_discovery_up', { service: 'users' }), 1);
  t.equal(sampleValue(s, 'gantry_breaker_state', { service: 'users', state: 'closed' }), 1);
  t.equal(sampleValue(s, 'gantry_config_version'), 1);
  t.ok(sampleValue(s, 'process_resident_memory_bytes')! > 0, 'process metrics are there');
  const labelValues = new Set(s.flatMap((x) => Object.values(x.labels)));
  t.notOk([...labelValues].some((v) => v.includes('/nowhere') || v.includes('/api/ok')), 'no request path ever becomes a label value');
});

t.test('an endpoint ejected again after its ejection ran out is counted again, and its changedAt moves', async (t) => {
  const bad = await startRecordingUpstream((_req, res) => { res.writeHead(500); res.end('bad'); });
  const good = await startRecordingUpstream();
  const gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: warn, access: false }
services:
  svc:
    discovery: { type: static, endpoints: ["${bad.url}", "${good.url}"] }
    balancer: round-robin
    retry: { attempts: 0 }
    circuitBreaker: { enabled: false }
    outlierDetection: { consecutive5xx: 1, baseEjectionMs: 200, maxEjectionMs: 200 }
routes:
  - { match: { path: / }, service: svc }
`);
  t.teardown(async () => { await gw.close(); await bad.close(); await good.close(); });
  const badEndpoint = () => gw.gateway.current().services.get('svc')!.pool.endpoints.find((e) => e.address === bad.url)!;
  const ejections = async () => sampleValue(parsePromText(await (await fetch(`${gw.adminUrl}/metrics`)).text()), 'gantry_endpoint_ejections_total', { service: 'svc', reason: 'consecutive-5xx' });
  const changedAt = async () => ((await get(`${gw.adminUrl}/admin/services`)).body.services[0].endpoints as { address: string; changedAt: string }[]).find((e) => e.address === bad.url)?.changedAt;
  /** Requests until the bad endpoint has answered one more 500 (which ejects it). */
  const ejectOnce = async () => {
    const seen = bad.requests.length;
    while (bad.requests.length === seen) await (await fetch(`${gw.url}/x`)).arrayBuffer();
    t.ok(Date.now() < badEndpoint().health.ejectedUntil, 'the 500 ejected it');
  };

  await ejectOnce();
  t.equal(await ejections(), 1);
  const first = await changedAt();
  await waitFor(() => Date.now() >= badEndpoint().health.ejectedUntil, 5000, 'the ejection to run out');
  await ejectOnce();
  t.equal(await ejections(), 2, 'a second ejection is a second count');
  t.not(await changedAt(), first, 'the second ejection is a change');
});

t.test('admin API shapes: config, routes, services, scaling, stats; 404 and 405', async (t) => {
  const { gw } = await setup(t, true);
  await get(`${gw.url}/api/ok`);
  const cfg = await get(`${gw.adminUrl}/admin/config`);
  t.equal(cfg.status, 200);
  t.equal(cfg.headers.get('cache-control'), 'no-store');
  t.match(cfg.body, {
    version: 1, hash: /^[0-9a-f]{64}$/, loadedAt: /^\d{4}-\d\d-\d\dT/, file: gw.file, routes: 1, services: 1, lastReload: null,
    gantry: { version: /^\d+\.\d+\.\d+/, node: process.versions.node, pid: process.pid },
  });
  const fileHash = (await import('node:crypto')).createHash('sha256').update(await readFile(gw.file)).digest('hex');
  t.equal(cfg.body.hash, fileHash, 'the hash is the sha256 of the file');

  const routes = await get(`${gw.adminUrl}/admin/routes`);
  t.same(routes.body, {
    version: 1,
    routes: [{
      name: 'users-api', service: 'users', split: null, match: { hosts: [], path: '/api', exactPath: null, pathRegex: null, methods: ['GET', 'POST'], headers: [] },
      stripPrefix: true, replacePrefix: null, websocket: false, timeoutMs: 15000, maxBodyBytes: 10485760,
    }],
  });

  const services = await get(`${gw.adminUrl}/admin/services`);
  t.match(services.body, {
    version: 1,
    services: [{
      name: 'users', routes: ['users-api'], balancer: 'round-robin', timeoutMs: 15000,
      discovery: { type: 'static', up: true, lastSuccessAt: /T/, lastError: null }, inFlight: 0,
      traffic: { windowMs: 60000, requests: 1, errors: 0, p50Ms: Number },
      endpoints: [{ address: /^http:\/\/127\.0\.0\.1:\d+$/, weight: 1, inFlight: 0, health: 'healthy', breaker: 'closed', ejected: false, ewmaMs: Number, changedAt: null }],
    }],
  });

  t.same((await get(`${gw.adminUrl}/admin/scaling`)).body, { services: [], decisions: [] }, 'no scaling yet: empty lists');
  await (gw.gateway.scaling as ScalingLoop).evaluate('users');
  const [decision] = gw.gateway.scaling.recentDecisions('users');
  t.match(decision, { outcome: 'applied', cause: 'min', current: 1, desired: 3 }, 'the loop decided and the scaler carried it out');
  t.match((await get(`${gw.adminUrl}/admin/scaling`)).body, {
    services: [{ service: 'users', desired: 3, current: 1, at: /T/ }],
    decisions: [{ service: 'users', current: 1, desired: 3, direction: 'up', reason: decision?.reason, at: /T/ }],
  }, 'the admin API lists the loop\'s own decision');

  // The chart's points are the complete buckets since the start: wait for the bucket of the decision to end.
  const bucketEnd = (Math.floor(Date.now() / 5000) + 1) * 5000;
  await waitFor(() => Date.now() >= bucketEnd, 6000, 'the bucket to end', 50);
  const stats = await get(`${gw.adminUrl}/admin/stats`);
  t.match(stats.body, {
    now: Number, startedAt: Number, bucketMs: 5000, windowMs: 300000, reloads: [], scaling: [{ direction: 'up' }],
    scalingHolds: { count: 0, lastAt: null }, gatewayErrors: [],
  });
  const points = stats.body.services.users.points as { t: number; requests: number; desiredReplicas: number | null }[];
  const { now, startedAt } = stats.body as { now: number; startedAt: number };
  t.ok(points.length >= 1 && points.length <= Math.ceil((now - startedAt) / 5000) + 1, `${points.length} points: the buckets since the start`);
  t.ok(points[0]!.t <= startedAt && points[0]!.t + 5000 > startedAt, 'the first is the bucket the gateway started in');
  t.ok(points.at(-1)!.t + 5000 <= now, 'the last is complete');
  t.equal(points.reduce((n, p) => n + p.requests, 0), 1);
  t.equal(points.at(-1)?.desiredReplicas, 3);

  t.match(await get(`${gw.adminUrl}/admin/nope`), { status: 404, body: { error: 'not_found' } });
  const wrong = await get(`${gw.adminUrl}/admin/reload`);
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('allow'), 'POST');
  t.equal((await get(`${gw.adminUrl}/healthz`)).body.status, 'ok');
  t.match((await get(`${gw.adminUrl}/readyz`)).body, { status: 'ready', generation: 1 });
});

t.test('admin paths on the data-plane port are never the admin API', async (t) => {
  const { up, gw } = await setup(t);
  for (const path of ['/admin/config', '/admin/reload', '/metrics', '/healthz', '/readyz', '/dashboard', '/admin/stats']) {
    const r = await get(`${gw.url}${path}`, { method: path === '/admin/reload' ? 'POST' : 'GET' });
    t.equal(r.status, 404, `${path}: 404`);
    t.match(r.body, { error: 'GW_ERR_NO_ROUTE', request_id: /./ }, `${path}: the gateway's no-route error`);
  }
  t.equal(up.requests.length, 0, 'nothing reached the upstream either');
  t.equal(gw.gateway.current().generation, 1, 'no reload happened');

  // With a catch-all route, /admin/* belongs to the upstream: it answers, never the admin API.
  await gw.rewrite(config(up.url, '  - { name: all, match: { path: / }, service: users }\n'));
  t.equal((await gw.gateway.reload()).result, 'applied');
  const r = await get(`${gw.url}/admin/config`);
  t.equal(r.text, 'upstream saw /admin/config');
  t.equal(up.requests.at(-1)?.url, '/admin/config');
});

t.test('POST /admin/reload: a bad file answers 422 with every problem and changes nothing; a good one applies', async (t) => {
  const { gw, up } = await setup(t);
  const before = (await get(`${gw.adminUrl}/admin/config`)).body;
  await gw.rewrite(`${config(up.url)}  - { match: { path: /x }, service: missing }
  - { match: { path: nope }, service: users }
`);
  const refused = await get(`${gw.adminUrl}/admin/reload`, { method: 'POST' });
  t.equal(refused.status, 422);
  t.match(refused.body, { result: 'refused', generation: 1, message: /routes\[2\]\.match\.path: must start with "\/"/ });
  t.same(refused.body.problems.map((p: { text: string }) => p.text), [
    `${gw.file}:14:22: routes[2].match.path: must start with "/"`,
  ], 'schema problems are reported first (the semantic checks need a valid shape)');
  t.match(refused.body.problems[0], { file: gw.file, line: 14, col: 22, path: 'routes[2].match.path' });

  const after = (await get(`${gw.adminUrl}/admin/config`)).body;
  t.equal(after.hash, before.hash, 'same hash');
  t.equal(after.version, 1, 'same version');
  t.match(after.lastReload, { result: 'refused', generation: 1, problems: 1 });
  t.equal((await get(`${gw.url}/api/still`)).status, 200, 'the old config keeps serving');
  let s = await scrape(gw);
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'refused' }), 1);
  t.equal(sampleValue(s, 'gantry_config_last_reload_successful'), 0);

  await gw.rewrite(`${config(up.url)}  - { match: { path: /x }, service: missing }\n`);
  const semantic = await get(`${gw.adminUrl}/admin/reload`, { method: 'POST' });
  t.equal(semantic.status, 422);
  t.same(semantic.body.problems.map((p: { text: string }) => p.text), [`${gw.file}:13:37: routes[1].service: unknown service "missing" (defined: users)`]);

  await gw.rewrite(config(up.url, '  - { name: late, match: { path: /late }, service: users }\n'));
  const applied = await get(`${gw.adminUrl}/admin/reload`, { method: 'POST' });
  t.equal(applied.status, 200);
  t.match(applied.body, { result: 'applied', generation: 2, hash: /^[0-9a-f]{64}$/, changes: { routes: { added: ['late'] } } });
  t.equal((await get(`${gw.url}/late`)).status, 200);
  t.match((await get(`${gw.adminUrl}/admin/reload`, { method: 'POST' })).body, { result: 'unchanged', generation: 2 });
  s = await scrape(gw);
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'refused' }), 2);
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'applied' }), 1);
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'unchanged' }), 1);
  t.equal(sampleValue(s, 'gantry_config_version'), 2);
  t.equal(sampleValue(s, 'gantry_config_last_reload_successful'), 1);
  t.same((await get(`${gw.adminUrl}/admin/stats`)).body.reloads.map((r: { result: string }) => r.result), ['unchanged', 'applied', 'refused', 'refused'], 'newest first');
  t.ok(gw.logs.some((l) => l.event === 'admin-reload'), 'the reload request is logged');
});

t.test('coalesced reloads count once per run, not once per request', async (t) => {
  const { gw, up } = await setup(t);
  await gw.rewrite(config(up.url, '  - { name: late, match: { path: /late }, service: users }\n'));
  // Five requests in one tick: the first runs, the others coalesce into exactly one more run (reloader.ts).
  const outcomes = await Promise.all(Array.from({ length: 5 }, () => gw.gateway.reload()));
  t.ok(outcomes.every((o) => o.result === 'applied'));
  const s = await scrape(gw);
  t.same(['applied', 'unchanged', 'refused'].map((result) => sampleValue(s, 'gantry_config_reloads_total', { result })), [1, 1, 0]);
});

t.test('without adminAuth the dashboard page carries its first state, with no value able to end the data block', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(config(up.url, '  - { name: odd, match: { pathRegex: "^/x</script><!--" }, service: users }\n'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const page = await get(`${gw.adminUrl}/dashboard`);
  t.equal(page.status, 200);
  const block = /<script id="initial-state" type="application\/json">(.*?)<\/script>/s.exec(page.text);
  t.ok(block, 'the data block is there, closed where the page closes it');
  t.notMatch(block?.[1], /</, 'no "<" inside it');
  const state = JSON.parse(block?.[1] ?? 'null') as { config: { version: number }; routes: { routes: { match: { pathRegex: string | null } }[] }; stats: { services: object }; ready: { status: string } };
  t.match(state, { config: { version: 1 }, stats: { services: { users: {} } }, ready: { status: 'ready' } }, 'what the first poll would fetch');
  t.equal(state.routes.routes[1]?.match.pathRegex, '^/x</script><!--', 'the value itself intact');
});
