import t from 'tap';
import { createBalancer, type PickContext } from '../../gateway/balancing/balancer.js';
import { PENALTY_MAX_MS } from '../../gateway/balancing/peak-ewma.js';
import type { BreakerConfig } from '../../gateway/config/gateway-config.js';
import { EndpointState } from '../../gateway/upstream/endpoint-state.js';

const breaker: BreakerConfig = { enabled: false, consecutiveFailures: 5, halfOpenAfterMs: 1000, maxHalfOpenAfterMs: 1000 };
function endpoints(weights: number[], now = 0): EndpointState[] {
  return weights.map((w, i) => new EndpointState('svc', `http://127.0.0.1:${3000 + i}`, w, { maxSockets: 1, idleTimeoutMs: 1000, connectTimeoutMs: 1000, breaker, protocol: 'http1', tls: null }, now));
}
function ctx(usable: (e: EndpointState) => boolean = () => true, hashKey?: string, now = 0): PickContext {
  return { usable, hashKey, now };
}
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}
function histogram(name: Parameters<typeof createBalancer>[0], list: EndpointState[], n: number, random = seeded(7), c = ctx()): number[] {
  const b = createBalancer(name, { random });
  const counts = list.map(() => 0);
  for (let i = 0; i < n; i++) counts[list.indexOf(b.pick(list, c)!)]!++;
  return counts;
}

t.test('round-robin visits every endpoint in turn', async (t) => {
  const list = endpoints([1, 5, 1]);
  const b = createBalancer('round-robin');
  t.same([0, 1, 2, 3, 4, 5].map(() => list.indexOf(b.pick(list, ctx())!)), [0, 1, 2, 0, 1, 2]);
});

t.test('weighted round robin is exact and smooth: 5,1,1 gives a a b a c a a', async (t) => {
  const list = endpoints([5, 1, 1]);
  const b = createBalancer('weighted-round-robin');
  t.same(Array.from({ length: 7 }, () => 'abc'[list.indexOf(b.pick(list, ctx())!)]).join(''), 'aabacaa');
  t.same(histogram('weighted-round-robin', list, 7000), [5000, 1000, 1000]);
});

t.test('weighted round robin starts over when the pool changes', async (t) => {
  const b = createBalancer('weighted-round-robin');
  const a = endpoints([1, 1]);
  b.pick(a, ctx());
  const c = endpoints([3, 1]);
  const counts = [0, 0];
  for (let i = 0; i < 400; i++) counts[c.indexOf(b.pick(c, ctx())!)]!++;
  t.same(counts, [300, 100]);
});

t.test('random honours weights within 3 %', async (t) => {
  const counts = histogram('random', endpoints([1, 2, 7]), 100_000);
  [0.1, 0.2, 0.7].forEach((share, i) => t.ok(Math.abs(counts[i]! / 100_000 - share) < 0.03, `endpoint ${i}: ${counts[i]}`));
});

t.test('least-request picks the endpoint with the fewest requests in flight, relative to weight', async (t) => {
  const list = endpoints([1, 1, 2]);
  list[0]!.inFlight = 3; list[1]!.inFlight = 1; list[2]!.inFlight = 4;
  t.equal(createBalancer('least-request').pick(list, ctx()), list[1]);
  list[2]!.inFlight = 1;
  t.equal(createBalancer('least-request').pick(list, ctx()), list[2]);
});

t.test('least-request rotates among idle endpoints instead of always taking the first', async (t) => {
  t.same(histogram('least-request', endpoints([1, 1, 1]), 300), [100, 100, 100]);
});

t.test('p2c takes the less loaded of two distinct random endpoints', async (t) => {
  const list = endpoints([1, 1, 1, 1]);
  list[0]!.inFlight = 10; list[1]!.inFlight = 10; list[2]!.inFlight = 10; list[3]!.inFlight = 0;
  const counts = histogram('p2c', list, 10_000);
  // Endpoint 3 wins whenever it is one of the two draws: 1 - (3/4 × 2/3) = 1/2 of the picks.
  t.ok(Math.abs(counts[3]! / 10_000 - 0.5) < 0.03, `idle endpoint got ${counts[3]}`);
  t.same(histogram('p2c', endpoints([1]), 5), [5]);
});

t.test('every balancer skips unusable endpoints and says so when none is left', async (t) => {
  for (const name of ['round-robin', 'weighted-round-robin', 'random', 'least-request', 'p2c', 'consistent-hash'] as const) {
    const list = endpoints([1, 2, 1]);
    const onlyMiddle = ctx((e) => e === list[1], 'key');
    const b = createBalancer(name, { random: seeded(3) });
    for (let i = 0; i < 20; i++) t.equal(b.pick(list, onlyMiddle), list[1], `${name} picks the one usable endpoint`);
    t.equal(b.pick(list, ctx(() => false, 'key')), undefined, `${name}: none usable`);
  }
});

t.test('p2c over peak-EWMA sends less traffic to a slow endpoint and gives it back when it recovers', async (t) => {
  const list = endpoints([1, 1, 1]);
  let now = 0;
  for (let i = 0; i < 20; i++) {
    now += 10;
    list[0]!.latency.observe(200, now);
    list[1]!.latency.observe(10, now);
    list[2]!.latency.observe(10, now);
  }
  const slow = histogram('p2c', list, 3000, seeded(11), ctx(() => true, undefined, now));
  t.ok(slow[0]! < 3000 * 0.2, `the slow endpoint got ${slow[0]} of 3000`);
  // It speeds up: a minute of fast answers pulls the estimate down (tau 10 s) and its share comes back.
  for (let i = 0; i < 1200; i++) { now += 50; for (const e of list) e.latency.observe(10, now); }
  const recovered = histogram('p2c', list, 3000, seeded(11), ctx(() => true, undefined, now));
  t.ok(recovered[0]! > 3000 * 0.28, `after recovery it got ${recovered[0]} of 3000`);
});

t.test('peak-EWMA: a slower answer is taken at once, failures count as slow, and idle estimates decay', async (t) => {
  const list = endpoints([1]);
  const ewma = list[0]!.latency;
  ewma.observe(10, 0);
  ewma.observe(500, 1);
  t.equal(ewma.estimate(1), 500, 'the peak replaces the estimate');
  t.ok(ewma.estimate(10_001) < 500 * 0.4, 'after one tau with no answers the estimate decayed');
  ewma.observe(5, 20_000);
  const before = ewma.estimate(20_000);
  ewma.penalize(20_000);
  t.ok(ewma.estimate(20_000) >= Math.max(before * 5, 250), 'a failure looks slow, so failing fast attracts nothing');
  for (let i = 0; i < 10; i++) ewma.penalize(20_000 + i);
  t.equal(ewma.estimate(20_009), PENALTY_MAX_MS, 'ten failures in a row: priced at the bound, not 250 ms × 5^9');
  t.ok(ewma.estimate(20_009 + 25_000) < 1000, 'so it decays under a second within 25 s of quiet, and is tried again');
  const slow = endpoints([1])[0]!.latency;
  slow.observe(30_000, 0);
  slow.penalize(0);
  t.equal(slow.estimate(0), 30_000, 'an endpoint slower than the bound keeps its measured estimate: a failure neither lowers nor multiplies it');
});

t.test('consistent hashing is sticky per key and moves only the keys of a removed endpoint', async (t) => {
  const list = endpoints([1, 1, 1, 1]);
  const b = createBalancer('consistent-hash', { random: seeded(1) });
  const keys = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
  const before = keys.map((k) => b.pick(list, ctx(() => true, k)));
  t.same(keys.map((k) => b.pick(list, ctx(() => true, k))), before, 'the same key goes to the same endpoint');
  const shares = list.map((e) => before.filter((x) => x === e).length / keys.length);
  t.ok(shares.every((s) => s > 0.15 && s < 0.35), `spread: ${shares.map((s) => s.toFixed(2)).join(' ')}`);
  const smaller = list.slice(0, 3);
  const after = keys.map((k) => b.pick(smaller, ctx(() => true, k)));
  const moved = keys.filter((_, i) => before[i] !== after[i] && before[i] !== list[3]).length;
  t.equal(moved, 0, 'keys of the endpoints that stayed did not move');
  const down = keys.map((k) => b.pick(list, ctx((e) => e !== list[0], k)));
  t.equal(keys.filter((_, i) => before[i] !== list[0] && down[i] !== before[i]).length, 0, 'an unusable owner passes only its own keys on');
});

t.test('consistent hashing spreads sequential keys evenly, whatever the endpoint addresses look like', async (t) => {
  // Keys that differ only in their last characters (user ids, counters) and endpoint names that do too.
  const sets = [
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3001', 'http://127.0.0.1:3002'],
    ['http://10.0.0.5:8000', 'http://10.0.0.6:8000', 'http://10.0.0.7:8000'],
    ['http://10.244.1.17:8080', 'http://10.244.2.9:8080', 'http://10.244.3.4:8080'],
    ['http://api-0.api:80', 'http://api-1.api:80', 'http://api-2.api:80'],
  ];
  const keySets = [Array.from({ length: 3000 }, (_, i) => `user-${i}`), Array.from({ length: 3000 }, (_, i) => String(100000 + i))];
  for (const addresses of sets) {
    const list = addresses.map((a) => new EndpointState('svc', a, 1, { maxSockets: 1, idleTimeoutMs: 1000, connectTimeoutMs: 1000, breaker, protocol: 'http1', tls: null }, 0));
    const b = createBalancer('consistent-hash', { random: seeded(1) });
    for (const keys of keySets) {
      const counts = list.map(() => 0);
      for (const k of keys) counts[list.indexOf(b.pick(list, ctx(() => true, k))!)]!++;
      const shares = counts.map((c) => c / keys.length);
      t.ok(shares.every((s) => s > 0.25 && s < 0.42), `${addresses[0]}…, keys ${keys[0]}…: ${shares.map((s) => s.toFixed(2)).join(' ')}`);
    }
  }
});

t.test('slow start gives a new endpoint 10 % of its share at first and all of it after slowStartMs', async (t) => {
  const old = endpoints([1], 0)[0]!;
  const fresh = new EndpointState('svc', 'http://127.0.0.1:4999', 1, { maxSockets: 1, idleTimeoutMs: 1000, connectTimeoutMs: 1000, breaker, protocol: 'http1', tls: null }, 10_000);
  const pool = [old, fresh];
  const b = createBalancer('least-request', { slowStartMs: 10_000 });
  old.inFlight = 5;   // load 6 against the fresh one's 1 / 0.1 = 10: the old one still wins
  t.equal(b.pick(pool, ctx(() => true, undefined, 10_000)), old, 'at age 0');
  t.equal(b.pick(pool, ctx(() => true, undefined, 15_000)), fresh, 'halfway (factor 0.55: load 1.8)');
  old.inFlight = 0;
  fresh.inFlight = 0;
  const counts = [0, 0];
  for (let i = 0; i < 100; i++) counts[pool.indexOf(b.pick(pool, ctx(() => true, undefined, 20_000))!)]!++;
  t.same(counts, [50, 50], 'after slowStartMs, equal shares');
});

t.test('the retry budget allows ratio × requests plus a floor that accrues per second, never banked up front', async (t) => {
  const { RetryBudget } = await import('../../gateway/resilience/retry-budget.js');
  const budget = new RetryBudget(0.2, 3, 3000);
  let retries = 0;
  let requests = 0;
  // 100 requests/s for 10 s, every one wanting a retry (an upstream failing everything).
  for (let ms = 0; ms < 10_000; ms += 10) {
    budget.recordRequest(ms);
    requests++;
    if (budget.tryAcquire(ms)) retries++;
  }
  t.ok(retries <= 0.2 * requests + 3 * 10, `${retries} retries for ${requests} requests over 10 s`);
  t.ok(retries >= 0.2 * requests, 'and the budget is used');
  const quiet = new RetryBudget(0.2, 3, 10_000);
  let first = 0;
  for (let i = 0; i < 50; i++) if (quiet.tryAcquire(0)) first++;
  t.equal(first, 3, 'at start only one second of floor is available');
});
