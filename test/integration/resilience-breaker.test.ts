import http from 'node:http';
import net from 'node:net';
import { CircuitState } from 'cockatiel';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function yaml(endpoints: string[], service: string): string {
  return `listen: 127.0.0.1:0
log: { level: info, access: false }
services:
  svc:
    discovery: { type: static, endpoints: [${endpoints.map((e) => `"${e}"`).join(', ')}] }
${service}routes:
  - { match: { path: / }, service: svc }
`;
}

interface Answer { status: number; body: string; retryAfter?: string; ms: number; instance?: string }
function request(port: number, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, body, retryAfter: res.headers['retry-after'] as string | undefined, ms: performance.now() - started,
        instance: res.headers['x-instance'] as string | undefined,
      }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

t.test('slow upstream: 504 at the per-try timeout, the breaker opens, 503 without touching the upstream, one probe per half-open window, closes on success', async (t) => {
  let delayMs = 1000;
  let arrived = 0;
  const up = await startRecordingUpstream((_req, res) => setTimeout(() => res.end('ok'), delayMs));
  up.server.on('request', () => { arrived++; });
  t.teardown(() => up.close());
  const gw = await startGateway(yaml([up.url], `    timeoutMs: 2000
    tryTimeoutMs: 200
    retry: { attempts: 0 }
    circuitBreaker: { consecutiveFailures: 3, halfOpenAfterMs: 400, maxHalfOpenAfterMs: 800 }
`));
  t.teardown(() => gw.close());

  for (let i = 0; i < 3; i++) {
    const r = await request(gw.port, '/slow');
    t.equal(r.status, 504, `try ${i + 1}: 504`);
    // Semantics, not speed: the per-try timer (200 ms) fired, not the 2 s deadline nor the upstream's 1 s answer.
    t.ok(r.ms >= 190 && r.ms < 950, `at the per-try timeout (${r.ms.toFixed(0)} ms)`);
  }
  t.equal(arrived, 3);
  const connectsBefore = up.openSockets();
  const open = await Promise.all(Array.from({ length: 20 }, () => request(gw.port, '/open')));
  t.ok(open.every((r) => r.status === 503 && JSON.parse(r.body).error === 'GW_ERR_NO_ENDPOINT'), 'open: 503 GW_ERR_NO_ENDPOINT');
  t.ok(open.every((r) => r.retryAfter === '1'), 'Retry-After until the probe');
  // How fast is for bench/: here, only that nothing waited on a timer or the network (a hang guard).
  t.ok(open.every((r) => r.ms < 1000), 'answered without waiting');
  t.equal(arrived, 3, 'no request reached the upstream while open');
  t.ok(up.openSockets() <= connectsBefore, 'and no new connection was made');

  await sleep(450);
  const window1 = await Promise.all(Array.from({ length: 5 }, () => request(gw.port, '/probe')));
  t.equal(arrived, 4, 'exactly one probe in the half-open window');
  t.same(window1.map((r) => r.status).sort(), [503, 503, 503, 503, 504], 'the probe timed out; the rest were refused');

  delayMs = 0;
  await sleep(300);
  t.equal((await request(gw.port, '/early')).status, 503, 'a failed probe doubles the wait (800 ms)');
  await sleep(600);
  const probe = await request(gw.port, '/probe-ok');
  t.equal(probe.status, 200, 'the next probe succeeds');
  const after = await Promise.all(Array.from({ length: 10 }, () => request(gw.port, '/closed')));
  t.ok(after.every((r) => r.status === 200), 'the breaker closed: traffic flows again');

  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.match(metrics, /gantry_breaker_transitions_total\{service="svc",state="open"\} 2\n/, 'metrics: opened twice');
  t.match(metrics, /gantry_breaker_transitions_total\{service="svc",state="closed"\} 1\n/, 'metrics: closed once');
  t.match(metrics, /gantry_breaker_state\{service="svc",endpoint="[^"]+",state="closed"\} 1\n/, 'metrics: closed now');
});

t.test('failureRatio: 40 % of tries failing keeps the circuit closed at threshold 0.5; all failing opens it once the volume is there', async (t) => {
  // Endpoint A resets the connection of every request whose number is in `failing`; B always answers.
  let failing = (n: number) => n % 5 < 2;
  let n = 0;
  const a = await startRecordingUpstream((req, res) => { if (failing(n++)) req.socket.destroy(); else res.end('a'); });
  const b = await startRecordingUpstream((_req, res) => res.end('b'));
  t.teardown(async () => { await a.close(); await b.close(); });
  const gw = await startGateway(yaml([a.url, b.url], `    balancer: round-robin
    retry: { attempts: 0 }
    outlierDetection: { enabled: false }
    circuitBreaker: { failureRatio: { threshold: 0.5, windowMs: 5000, minimumRps: 2 }, halfOpenAfterMs: 60000 }
`));
  t.teardown(() => gw.close());

  // 40 requests: 20 reach A, 8 of which fail. Each try is counted: with the circuit closed they skip the breaker's
  // execute (EndpointHealth.closedSuccess/closedFailure), so this is where those reports meet the sampling breaker.
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) statuses.push((await request(gw.port, '/x')).status);
  t.equal(n, 20, 'A got its half');
  t.equal(statuses.filter((s) => s === 502).length, 8, 'its 8 resets came back as 502 (no retries here)');
  const health = () => gw.gateway.current().services.get('svc')!.pool.endpoints.map((e) => e.health.breaker?.state);
  t.same(health(), [CircuitState.Closed, CircuitState.Closed], 'a failure ratio of 0.4 keeps both circuits closed (a consecutive-failure breaker of 2 would have opened)');

  failing = () => true;
  const before = n;
  let tries = 0;
  while (health()[0] === CircuitState.Closed && tries++ < 40) await request(gw.port, '/x');
  t.equal(health()[0], CircuitState.Open, 'then A failing every try opens its circuit');
  t.equal(n - before, 5, 'at the 5th: 13 of the window\'s 25 tries failed, past half');
  const hitsA = n;
  for (let i = 0; i < 10; i++) t.equal((await request(gw.port, '/x')).body, 'b', 'only B answers');
  t.equal(n, hitsA, 'A is left alone while open');
});

t.test('an open breaker survives a reload', async (t) => {
  const up = await startRecordingUpstream((req, res) => { req.socket.destroy(); void res; });
  t.teardown(() => up.close());
  const service = '    retry: { attempts: 0 }\n    circuitBreaker: { consecutiveFailures: 2, halfOpenAfterMs: 60000 }\n';
  const gw = await startGateway(yaml([up.url], service));
  t.teardown(() => gw.close());
  await request(gw.port, '/a');
  await request(gw.port, '/b');
  t.equal((await request(gw.port, '/c')).status, 503, 'open');
  await gw.rewrite(yaml([up.url], `${service}    timeoutMs: 9000\n`));
  t.equal((await gw.gateway.reload()).result, 'applied');
  const r = await request(gw.port, '/d');
  t.equal(r.status, 503, 'still open after the reload');
  t.equal(up.requests.length, 2, 'only the two failures that opened it reached the upstream');
});

t.test('retries: an idempotent request goes to another endpoint; a POST is not retried after a reset unless it has an Idempotency-Key', async (t) => {
  const bad = await startRecordingUpstream((req) => req.socket.destroy());
  let badArrivals = 0;
  bad.server.on('request', () => { badArrivals++; });
  const good = await startRecordingUpstream();
  t.teardown(async () => { await bad.close(); await good.close(); });
  // A generous budget floor: this test is about which requests may be retried, not how many (see the storm test).
  const gw = await startGateway(yaml([bad.url, good.url], '    balancer: round-robin\n    circuitBreaker: { enabled: false }\n    outlierDetection: { enabled: false }\n    retry: { budget: { minPerSecond: 100 } }\n'));
  t.teardown(() => gw.close());

  const gets = await Promise.all([1, 2, 3, 4].map((i) => request(gw.port, `/get${i}`)));
  t.ok(gets.every((r) => r.status === 200), 'every GET succeeded, half of them on the second try');
  t.equal(good.requests.filter((q) => q.method === 'GET').length, 4);

  badArrivals = 0;
  const posts = [];
  for (let i = 0; i < 4; i++) posts.push(await request(gw.port, `/post${i}`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }));
  t.equal(posts.filter((r) => r.status === 502).length, badArrivals, 'a POST that reached the resetting endpoint failed: never replayed');
  t.ok(badArrivals >= 1);

  const keyed = [];
  for (let i = 0; i < 4; i++) keyed.push(await request(gw.port, `/keyed${i}`, { method: 'POST', body: 'x', headers: { 'idempotency-key': `k${i}` } }));
  t.ok(keyed.every((r) => r.status === 200), 'with an Idempotency-Key the POST is retried elsewhere');
  t.same(good.requests.filter((q) => q.url.startsWith('/keyed')).map((q) => q.body.toString()), ['x', 'x', 'x', 'x'], 'with its body replayed');
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const retries = Number(/gantry_retries_total\{service="svc",reason="reset"\} (\d+)/.exec(metrics)?.[1]);
  t.ok(retries >= 4, `metrics: ${retries} retries after a reset`);
});

t.test('a POST whose connection was refused is retried on another endpoint (nothing was sent)', async (t) => {
  const good = await startRecordingUpstream();
  t.teardown(() => good.close());
  const gw = await startGateway(yaml(['http://127.0.0.1:1', good.url], '    balancer: round-robin\n'));
  t.teardown(() => gw.close());
  const results = [];
  for (let i = 0; i < 4; i++) results.push(await request(gw.port, '/p', { method: 'POST', body: `body-${i}` }));
  t.ok(results.every((r) => r.status === 200));
  t.same(good.requests.map((q) => q.body.toString()), ['body-0', 'body-1', 'body-2', 'body-3']);
});

/** An endpoint that answers every request with something that is not HTTP; counts the requests it got. */
async function startGarbageUpstream(answer: string): Promise<{ url: string; requests: () => string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      for (const m of d.toString('latin1').matchAll(/^(GET|POST) (\S+) HTTP/gm)) requests.push(`${m[1]} ${m[2]}`);
      s.write(answer);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

t.test('an endpoint answering garbage: a POST is not replayed, GETs are retried elsewhere, and the breaker or outlier detection takes it out', async (t) => {
  const good = await startRecordingUpstream();
  t.teardown(() => good.close());
  // A generous budget floor: every GET that meets the garbage is retried (the storm test is about how many may be).
  const common = '    balancer: round-robin\n    retry: { budget: { minPerSecond: 100 } }\n';
  for (const [name, answer, guard] of [
    ['breaker', 'HELLO\r\n\r\n', '    circuitBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 60000 }\n    outlierDetection: { enabled: false }\n'],
    ['outlier detection', 'HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n', '    circuitBreaker: { enabled: false }\n    outlierDetection: { consecutive5xx: 5, baseEjectionMs: 60000 }\n'],
  ] as const) {
    const bad = await startGarbageUpstream(answer);
    const gw = await startGateway(yaml([bad.url, good.url], common + guard));
    const posts = [];
    for (let i = 0; i < 4; i++) posts.push(await request(gw.port, `/post${i}`, { method: 'POST', body: 'x' }));
    const refused = posts.filter((r) => r.status === 502);
    t.equal(refused.length, 2, `${name}: the POSTs that met the garbage failed`);
    t.equal(good.requests.filter((q) => q.method === 'POST').length, 2, `${name}: and were not replayed on the good endpoint`);
    for (const r of refused) t.match(JSON.parse(r.body), { error: 'GW_ERR_UPSTREAM_BAD_RESPONSE', request_id: /\S/ }, `${name}: 502 with its code and request id`);

    const gets = [];
    for (let i = 0; i < 12; i++) gets.push(await request(gw.port, `/get${i}`));
    t.same(gets.map((r) => r.status), Array(12).fill(200), `${name}: every GET got a 200, those that met the garbage on a retry`);
    t.equal(bad.requests().length, 5, `${name}: the garbage endpoint got 2 POSTs and 3 GETs, five malformed answers in a row, then no more`);
    const services = await (await fetch(`${gw.adminUrl}/admin/services`)).json() as { services: { endpoints: { address: string; breaker: string; ejected: boolean }[] }[] };
    const shown = services.services[0]?.endpoints.find((e) => e.address === bad.url);
    t.match(shown, name === 'breaker' ? { breaker: 'open', ejected: false } : { breaker: 'closed', ejected: true }, `${name}: the admin API shows it out`);
    good.requests.length = 0;
    await gw.close();
    await bad.close();
  }
});

t.test('outlier detection ejects an endpoint after consecutive 5xx, and never more than maxEjectionPercent', async (t) => {
  let failing = new Set(['b']);
  const make = (name: string) => startRecordingUpstream((_req, res) => {
    res.writeHead(failing.has(name) ? 500 : 200, { 'x-instance': name });
    res.end(name);
  });
  const a = await make('a');
  const b = await make('b');
  t.teardown(async () => { await a.close(); await b.close(); });
  const gw = await startGateway(yaml([a.url, b.url], '    balancer: round-robin\n    retry: { attempts: 0 }\n    outlierDetection: { consecutive5xx: 3, baseEjectionMs: 60000 }\n'));
  t.teardown(() => gw.close());
  const first = [];
  for (let i = 0; i < 6; i++) first.push(await request(gw.port, '/'));
  t.equal(first.filter((r) => r.status === 500).length, 3, 'b answered 500 three times');
  const next = [];
  for (let i = 0; i < 10; i++) next.push(await request(gw.port, '/'));
  t.ok(next.every((r) => r.instance === 'a'), 'then b was ejected: all traffic on a');
  const services = await (await fetch(`${gw.adminUrl}/admin/services`)).json() as { services: { name: string; endpoints: { address: string; ejected: boolean }[] }[] };
  t.same(services.services[0]?.endpoints.map((e) => e.ejected), [false, true], 'the admin API shows b ejected');

  failing = new Set(['a', 'b']);
  const both = [];
  for (let i = 0; i < 10; i++) both.push(await request(gw.port, '/'));
  t.ok(both.every((r) => r.instance === 'a'), 'a is not ejected too: 50 % of 2 endpoints is one');
});

t.test('active health checks take a failing endpoint out and bring it back by itself', async (t) => {
  let bHealthy = true;
  const make = (name: string, healthy: () => boolean) => startRecordingUpstream((req, res) => {
    if (req.url === '/health') { res.writeHead(healthy() ? 200 : 503); res.end(); return; }
    res.writeHead(200, { 'x-instance': name });
    res.end(name);
  });
  const a = await make('a', () => true);
  const b = await make('b', () => bHealthy);
  t.teardown(async () => { await a.close(); await b.close(); });
  const checks = '    healthCheck: { path: /health, intervalMs: 100, timeoutMs: 100, healthyThreshold: 2, unhealthyThreshold: 2 }\n';
  const gw = await startGateway(yaml([a.url, b.url], `    balancer: round-robin\n${checks}`));
  t.teardown(() => gw.close());
  const spread = async () => {
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push((await request(gw.port, '/')).instance);
    return seen;
  };
  t.same((await spread()).sort(), ['a', 'a', 'a', 'b', 'b', 'b'], 'both in rotation');
  bHealthy = false;
  await sleep(400);
  t.same(await spread(), ['a', 'a', 'a', 'a', 'a', 'a'], 'b failing its checks is out');
  t.ok(gw.logs.some((l) => l.event === 'endpoint-unhealthy'), 'logged once when it went out');
  // A reload that turns the checks off puts b back at once; turning them on again takes it out again.
  await gw.rewrite(yaml([a.url, b.url], '    balancer: round-robin\n'));
  t.equal((await gw.gateway.reload()).result, 'applied');
  t.same((await spread()).sort(), ['a', 'a', 'a', 'b', 'b', 'b'], 'without checks, b is in rotation though its /health still fails');
  await gw.rewrite(yaml([a.url, b.url], `    balancer: round-robin\n${checks}`));
  t.equal((await gw.gateway.reload()).result, 'applied');
  await sleep(400);
  t.same(await spread(), ['a', 'a', 'a', 'a', 'a', 'a'], 'checks on again: b is out again');
  bHealthy = true;
  await sleep(400);
  t.same((await spread()).sort(), ['a', 'a', 'a', 'b', 'b', 'b'], 'b passing again is back');
});

t.test('p2c over peak-EWMA sends less traffic to a slow endpoint', async (t) => {
  const fast = await startRecordingUpstream((_req, res) => { res.writeHead(200, { 'x-instance': 'fast' }); res.end(); });
  const slow = await startRecordingUpstream((_req, res) => setTimeout(() => { res.writeHead(200, { 'x-instance': 'slow' }); res.end(); }, 40));
  t.teardown(async () => { await fast.close(); await slow.close(); });
  const gw = await startGateway(yaml([fast.url, slow.url], '    balancer: p2c\n'));
  t.teardown(() => gw.close());
  const counts = { fast: 0, slow: 0 } as Record<string, number>;
  for (let round = 0; round < 30; round++) {
    const answers = await Promise.all(Array.from({ length: 8 }, () => request(gw.port, '/')));
    for (const a of answers) counts[a.instance!]!++;
  }
  t.ok(counts.slow! < 240 * 0.3, `slow got ${counts.slow} of 240 (fast ${counts.fast})`);
});

t.test('p2c: clients that hang up do not count against the endpoint they were waiting on', async (t) => {
  const held: http.ServerResponse[] = [];
  let aborted = 0;
  const quick = await startRecordingUpstream((req, res) => {
    if (req.url !== '/held') { res.writeHead(200, { 'x-instance': 'quick' }); res.end(); return; }
    held.push(res);   // answered only if the client waits: it does not
    res.once('close', () => { aborted++; });
  });
  // Slow enough that the quick endpoint stays the cheaper one through the hang-ups even if each cost it a penalty
  // (250 ms, then five times that), so that what the test sees after them tells whether they did.
  const slower = await startRecordingUpstream((_req, res) => setTimeout(() => { res.writeHead(200, { 'x-instance': 'slower' }); res.end(); }, 2000));
  t.teardown(async () => { await quick.close(); await slower.close(); });
  const gw = await startGateway(yaml([quick.url, slower.url], '    balancer: p2c\n'));
  t.teardown(() => gw.close());
  const quickState = gw.gateway.current().services.get('svc')!.pool.endpoints.find((e) => e.address === quick.url)!;

  // Both endpoints answer once, so each has an estimate: about 2 s for the slower, a few ms for the quick one.
  for (let i = 0; i < 20 && (slower.requests.length === 0 || quick.requests.length === 0); i++) await request(gw.port, '/warm');
  t.ok(slower.requests.length > 0 && quick.requests.length > 0, 'both endpoints answered');
  const at = Date.now();
  const estimate = quickState.latency.estimate(at);

  const heldOnSlower = () => slower.requests.filter((q) => q.url === '/held').length;
  for (let i = 1; i <= 3; i++) {
    const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/held', agent: false });
    req.on('error', () => {});
    await waitFor(() => held.length === i || heldOnSlower() > 0, 5000, `held request ${i} upstream`);
    req.destroy();
    if (!t.equal(heldOnSlower(), 0, `hang-up ${i} was waiting on the quick endpoint`)) break;
    await waitFor(() => aborted === i, 5000, `held request ${i} aborted upstream`);
    await waitFor(() => quickState.inFlight === 0, 5000, 'the aborted try released');
    t.equal(quickState.latency.estimate(at), estimate, `after hang-up ${i}, the quick endpoint's latency estimate is untouched`);
  }

  const after = [];
  for (let i = 0; i < 3; i++) after.push((await request(gw.port, '/after')).instance);
  t.ok(after.includes('quick'), `p2c still sends to the quick endpoint (${after.join(' ')})`);
});
