import http from 'node:http';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startGateway } from '../helpers/gateway-under-test.js';

const ECHO = fileURLToPath(new URL('../../examples/echo-server.js', import.meta.url));
const INSTANCE = fileURLToPath(new URL('../fixtures/scaling-instance.js', import.meta.url));

function yaml(scaling: string, command = `[node, ${JSON.stringify(ECHO)}]`): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug }
services:
  app:
    discovery: { type: scaler }
    scaling:
      scaler: { type: process, command: ${command}, healthIntervalMs: 25, stopGraceMs: 2000, output: ignore }
${scaling.split('\n').map((l) => `      ${l}`).join('\n')}
routes:
  - match: { path: / }
    service: app
`;
}

/** Scale from zero to one instance that never gets ready within a test: requests wait in the hold queue. */
function neverReadyYaml(hold: string): string {
  return yaml(`min: 0\nmax: 1\nintervalMs: 200\n${hold}`, `[node, ${JSON.stringify(INSTANCE)}]`)
    .replace('output: ignore }', 'output: ignore, env: { READY_AFTER_MS: "60000" }, startTimeoutMs: 60000 }');
}

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(15_000) });
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body };
}

/** A POST with a chunked body (no Content-Length): the streamed path. */
function chunkedPost(port: number, chunks: string[]): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/upload', method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

t.test('scale from zero: the first requests are held, an instance starts, and every one is served', async (t) => {
  const gw = await startGateway(yaml(`min: 0
max: 3
intervalMs: 200
windows: { stableMs: 1000, panicMs: 1000 }
idleToZeroMs: 1500
hold: { maxQueue: 50, timeoutMs: 15000 }`));
  t.teardown(() => gw.close());
  t.same(gw.gateway.scaling.status().map((s) => [s.service, s.current, s.ready]), [['app', null, 0]], 'nothing runs before the first request');

  const started = Date.now();
  const [a, b, c, d] = await Promise.all([
    get(`${gw.url}/first`),
    get(`${gw.url}/second`),
    get(`${gw.url}/with-body`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } }),
    chunkedPost(gw.port, ['chunk-1 ', 'chunk-2']),
  ]);
  t.same([a.status, b.status, c.status, d.status], [200, 200, 200, 200], 'served, not failed');
  t.equal(a.body.path, '/first');
  t.equal(c.body.bodyBytes, 5, 'a buffered body survives the wait');
  t.equal(d.body.bodyBytes, 15, 'a streamed body survives the wait');
  t.ok(Date.now() - started < 10_000);
  const scaled = gw.logs.find((l) => l.event === 'scaled');
  t.match(scaled, { from: 0, to: 1 }, 'scaled 0 → 1');
  t.ok(gw.logs.some((l) => l.event === 'hold'), 'the hold was logged');
  t.ok(gw.logs.some((l) => l.event === 'hold-released'), 'and its release');
  t.equal(gw.gateway.load.signals('app', 1000, 1000).waiting, 0, 'nothing left waiting');

  // Idle for idleToZeroMs: back to zero, the instance stopped.
  await waitFor(() => gw.logs.some((l) => l.event === 'scaled' && l.to === 0), 10_000, 'scaled to zero', 20);
  const down = gw.logs.find((l) => l.event === 'scaled' && l.to === 0);
  t.match(down, { from: 1, to: 0, cause: 'idle-to-zero' }, 'idle: back to zero');
  await waitFor(() => gw.gateway.current().services.get('app')?.pool.endpoints.length === 0, 10_000, 'no endpoint left', 20);
  t.equal(gw.gateway.current().services.get('app')?.pool.endpoints.length, 0);

  // And from zero again.
  const again = await get(`${gw.url}/again`);
  t.equal(again.status, 200);
  t.equal(again.body.path, '/again');
  t.equal(gw.logs.filter((l) => l.event === 'scaled' && l.from === 0 && l.to === 1).length, 2, 'a second cold start');
  const decisions = gw.gateway.scaling.recentDecisions('app');
  t.same(decisions.filter((x) => x.outcome === 'applied').map((x) => [x.current, x.desired, x.cause]), [[0, 1, 'scale-from-zero'], [1, 0, 'idle-to-zero'], [0, 1, 'scale-from-zero']]);
});

t.test('the hold is bounded: 503 with Retry-After past the wait, at once when the queue is full, and a client that leaves is dropped', async (t) => {
  const gw = await startGateway(neverReadyYaml('hold: { maxQueue: 2, timeoutMs: 600 }'));
  t.teardown(() => gw.close());
  const leaving = new AbortController();
  const left = get(`${gw.url}/leaves`, { signal: leaving.signal }).catch((e: Error) => e.name);
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  const waiting = get(`${gw.url}/waits`);
  await new Promise((r) => setTimeout(r, 50));
  const full = await get(`${gw.url}/full`);
  t.equal(full.status, 503, 'queue full: refused at once');
  t.equal(full.body.error, 'GW_ERR_NO_ENDPOINT');
  t.equal(full.headers.get('retry-after'), '1');
  leaving.abort();
  t.equal(await left, 'AbortError');
  const timedOut = await waiting;
  t.equal(timedOut.status, 503);
  t.equal(timedOut.body.error, 'GW_ERR_NO_ENDPOINT');
  t.equal(timedOut.headers.get('retry-after'), '1');
  const waited = Date.now() - started;
  t.ok(waited >= 550 && waited < 3000, `answered after the 600 ms wait (${waited} ms)`);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(gw.gateway.load.signals('app', 60_000, 6_000).waiting, 0, 'the client that left was dropped from the queue');
  t.ok(gw.logs.some((l) => l.event === 'hold-timeout'));
});

t.test('a shutdown answers the requests held for a first instance at once, instead of at the end of their wait', async (t) => {
  const gw = await startGateway(neverReadyYaml('hold: { maxQueue: 10, timeoutMs: 30000 }'));
  t.teardown(() => gw.close());
  const held = [get(`${gw.url}/one`), get(`${gw.url}/two`)];
  await waitFor(() => gw.gateway.load.signals('app', 60_000, 6_000).waiting === 2, 2000, 'two held requests');
  t.equal(gw.gateway.load.signals('app', 60_000, 6_000).waiting, 2, 'two requests wait for the first instance');

  const stopped = gw.gateway.shutdown(5000);
  for (const answer of await Promise.all(held)) {
    t.equal(answer.status, 503);
    t.equal(answer.body.error, 'GW_ERR_NO_ENDPOINT');
    t.equal(answer.headers.get('retry-after'), '1');
    t.equal(answer.headers.get('connection'), 'close', 'and the connection closes: the gateway is going away');
  }
  t.same(await stopped, { forced: false }, 'the drain ended by itself, within the grace, long before the 30 s wait');
});

t.test('demand: sustained load scales the service up, and back down when it stops', async (t) => {
  const gw = await startGateway(yaml(`min: 1
max: 3
target: { inFlight: 2 }
intervalMs: 200
windows: { stableMs: 2000, panicMs: 1000 }
scaleDown: { stabilizationWindowMs: 1000 }`));
  t.teardown(() => gw.close());
  t.equal(gw.gateway.current().services.get('app')?.pool.endpoints.length, 1, 'min 1 is running before the gateway takes traffic');
  const instances = new Set<string>();
  const stopAt = Date.now() + 4000;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (Date.now() < stopAt) {
      const r = await get(`${gw.url}/work?delay=150`);
      t.equal(r.status, 200);
      instances.add(r.body.instance);
    }
  }));
  const up = gw.logs.filter((l) => l.event === 'scaled' && (l.to as number) > (l.from as number));
  t.ok(up.length >= 1, 'scaled up');
  t.equal(Math.max(...up.map((l) => l.to as number)), 3, 'to max');
  t.ok(instances.size >= 2, `requests reached ${instances.size} instances`);
  await waitFor(() => gw.gateway.scaling.status()[0]?.current === 1, 15_000, 'back to min', 20);
  t.equal(gw.gateway.scaling.status()[0]?.current, 1, 'back to min once the load stopped');
  t.notOk(gw.logs.some((l) => l.status === 502 || l.status === 503), 'no failed request while instances came and went');
});
