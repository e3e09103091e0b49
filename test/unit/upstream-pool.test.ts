import t from 'tap';
import type { Discovery, DiscoveryUpdate, Endpoint } from '../../gateway/plugin-api/index.js';
import { EndpointRegistry } from '../../gateway/upstream/endpoint-registry.js';
import { DEFAULT_WATCH_BACKOFF, UpstreamPool, watchRetryDelayMs } from '../../gateway/upstream/upstream-pool.js';
import { captureLog, waitFor } from '../helpers/capture-log.js';

const ep = (port: number, weight = 1): Endpoint => ({ address: `http://127.0.0.1:${port}`, weight });

/** A discovery whose watches play scripted steps: an update, a throw, or a wait for the test to go on. */
function scripted(watches: (DiscoveryUpdate | Error | 'hang')[][]): Discovery & { calls: number } {
  const d = {
    calls: 0,
    async *watch(_service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
      const steps = watches[d.calls++] ?? ['hang'];
      for (const step of steps) {
        if (step instanceof Error) throw step;
        if (step === 'hang') { await new Promise((r) => signal.addEventListener('abort', r, { once: true })); return; }
        yield step;
      }
    },
    async close() {},
  };
  return d;
}

function makePool(discovery: Discovery, clock = { ms: 1000 }) {
  const { log, lines } = captureLog();
  const registry = new EndpointRegistry();
  const pool = new UpstreamPool({
    service: 'svc', discovery, registry, log, now: () => clock.ms, random: () => 0,
    settings: { maxSockets: 4, idleTimeoutMs: 1000, connectTimeoutMs: 1000, breaker: { enabled: false, consecutiveFailures: 5, halfOpenAfterMs: 1000, maxHalfOpenAfterMs: 1000 }, protocol: 'http1' as const, tls: null },
    backoff: { initialMs: 1, maxMs: 10 },
  });
  return { pool, lines, registry };
}

t.test('a failing source keeps the last endpoints, re-watches, and logs once per change of state', async (t) => {
  const d = scripted([
    [{ kind: 'reset', endpoints: [ep(1), ep(2)] }, new Error('etcd gone')],
    [new Error('still gone')],
    [new Error('still gone')],
    [{ kind: 'reset', endpoints: [ep(1), ep(2), ep(3)] }, 'hang'],
  ]);
  const clock = { ms: 1000 };
  const { pool, lines } = makePool(d, clock);
  pool.start();
  t.teardown(() => pool.close());
  await pool.ready;
  const first = pool.endpoints[0];
  await waitFor(() => pool.endpoints.length === 3, 2000, 'recovery');
  t.equal(d.calls, 4, 'three failed watches, then a good one');
  t.equal(pool.endpoints[0], first, 'an endpoint that stayed kept its state object');
  t.equal(lines.filter((l) => l.event === 'discovery-down').length, 1, 'one line for going down');
  t.equal(lines.filter((l) => l.event === 'discovery-up').length, 2, 'one for the first result, one for coming back');
  t.match(lines.find((l) => l.event === 'discovery-down'), { err: 'etcd gone', keptEndpoints: 2 });
  t.match(pool.status, { up: true, failures: 0, endpoints: 3, lastError: 'still gone', lastSuccessAt: 1000 });
});

t.test('re-watch delays double from 200 ms and stay within 1 s, never below half the step, whatever the random draw', async (t) => {
  const delays = (draw: number) => [1, 2, 3, 4, 5, 10, 100].map((n) => watchRetryDelayMs(n, DEFAULT_WATCH_BACKOFF, () => draw));
  t.same(delays(0), [100, 200, 400, 500, 500, 500, 500], 'the lowest draw still waits half the step: no hot loop');
  t.same(delays(0.5), [150, 300, 600, 750, 750, 750, 750]);
  t.same(delays(1), [200, 400, 800, 1000, 1000, 1000, 1000], 'a source that is back is watched again within 1 s');
  t.equal(watchRetryDelayMs(1e6, { initialMs: 1, maxMs: 10 }, () => 1), 10, 'a huge failure count does not overflow the cap');
});

t.test('an error update marks discovery down without ending the watch, and never empties the pool', async (t) => {
  const d = scripted([[
    { kind: 'reset', endpoints: [ep(1)] },
    { kind: 'error', reason: 'broken file' },
    { kind: 'error', reason: 'still broken' },
    'hang',
  ]]);
  const { pool, lines } = makePool(d);
  pool.start();
  t.teardown(() => pool.close());
  await waitFor(() => pool.status.failures === 2, 2000, 'two errors');
  t.equal(d.calls, 1, 'the same watch went on');
  t.equal(pool.endpoints.length, 1);
  t.match(pool.status, { up: false, lastError: 'still broken', endpoints: 1 });
  t.equal(lines.filter((l) => l.event === 'discovery-down').length, 1);
});

t.test('a reset that confirms the same set keeps the list; a weight change replaces it', async (t) => {

  const queue: DiscoveryUpdate[] = [];
  let wake: (() => void) | null = null;
  const push = (u: DiscoveryUpdate) => { queue.push(u); wake?.(); };
  const d: Discovery = {
    async *watch(_s, signal) {
      while (!signal.aborted) {
        const u = queue.shift();
        if (u) { yield u; continue; }
        await new Promise<void>((r) => { wake = r; signal.addEventListener('abort', () => r(), { once: true }); });
      }
    },
    async close() {},
  };
  const clock = { ms: 1 };
  const { pool } = makePool(d, clock);
  pool.start();
  t.teardown(() => pool.close());
  push({ kind: 'reset', endpoints: [ep(1), ep(2)] });
  await pool.ready;
  const list = pool.endpoints;
  clock.ms = 2;
  push({ kind: 'reset', endpoints: [ep(2), ep(1)] });
  await waitFor(() => pool.status.lastSuccessAt === 2);
  t.equal(pool.endpoints, list, 'same addresses and weights in another order: the same list');
  push({ kind: 'reset', endpoints: [ep(2), ep(1, 5)] });
  await waitFor(() => pool.endpoints !== list);
  t.equal(pool.endpoints.find((e) => e.address.endsWith(':1'))?.weight, 5);
  t.equal(pool.endpoints.find((e) => e.address.endsWith(':1')), list[0], 'the endpoint state survived the weight change');
  push({ kind: 'add', endpoints: [ep(3), ep(3)] });
  await waitFor(() => pool.endpoints.length === 3);
  push({ kind: 'remove', addresses: [ep(1).address] });
  await waitFor(() => pool.endpoints.length === 2);
  t.same(pool.endpoints.map((e) => e.address).sort(), [ep(2).address, ep(3).address]);
});

t.test('an update that drops most endpoints at once is logged as an error; not-found empties the pool', async (t) => {
  const d = scripted([[
    { kind: 'reset', endpoints: [ep(1), ep(2), ep(3), ep(4)] },
    { kind: 'reset', endpoints: [ep(1)] },
    { kind: 'not-found' },
    'hang',
  ]]);
  const { pool, lines, registry } = makePool(d);
  pool.start();
  t.teardown(() => pool.close());
  await waitFor(() => pool.endpoints.length === 0 && pool.status.lastSuccessAt !== null, 2000, 'not-found applied');
  const loud = lines.find((l) => l.event === 'discovery-mass-removal');
  t.match(loud, { level: 50, before: 4, after: 1 });
  t.equal(pool.status.up, true, 'not-found is an answer, not a failure');
  t.equal(registry.size, 0, 'dropped endpoints released their state');
});

t.test('a registry extended with third-party discovery plugins keeps its scalers', async (t) => {
  const { createBuiltinRegistry } = await import('../../plugins/index.js');
  const base = createBuiltinRegistry();
  const extended = base.with([{ kind: 'discovery', type: 'custom', optionsSchema: { type: 'object' }, create: () => ({ async *watch() {}, async close() {} }) } as never]);
  t.same(extended.scalerTypes().sort(), base.scalerTypes().sort());
  t.ok(extended.scalerTypes().includes('process'));
  t.ok(extended.discovery('custom'));
});
