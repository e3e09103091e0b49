import t from 'tap';
import { createBalancer } from '../../gateway/balancing/balancer.js';
import { EndpointState } from '../../gateway/upstream/endpoint-state.js';

function endpoints(weights: number[]): EndpointState[] {
  return weights.map((w, i) => new EndpointState('svc', `http://127.0.0.1:${3000 + i}`, w, { maxSockets: 1, idleTimeoutMs: 1000 }));
}
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}
function histogram(name: Parameters<typeof createBalancer>[0], list: EndpointState[], n: number, random = seeded(7)): number[] {
  const b = createBalancer(name, random);
  const counts = list.map(() => 0);
  for (let i = 0; i < n; i++) counts[list.indexOf(b.pick(list))]!++;
  return counts;
}

t.test('round-robin visits every endpoint in turn', async (t) => {
  const list = endpoints([1, 5, 1]);
  const b = createBalancer('round-robin');
  t.same([0, 1, 2, 3, 4, 5].map(() => list.indexOf(b.pick(list))), [0, 1, 2, 0, 1, 2]);
});

t.test('weighted round robin is exact and smooth: 5,1,1 gives a a b a c a a', async (t) => {
  const list = endpoints([5, 1, 1]);
  const b = createBalancer('weighted-round-robin');
  t.same(Array.from({ length: 7 }, () => 'abc'[list.indexOf(b.pick(list))]).join(''), 'aabacaa');
  t.same(histogram('weighted-round-robin', list, 7000), [5000, 1000, 1000]);
});

t.test('weighted round robin starts over when the pool changes', async (t) => {
  const b = createBalancer('weighted-round-robin');
  const a = endpoints([1, 1]);
  b.pick(a);
  const c = endpoints([3, 1]);
  const counts = [0, 0];
  for (let i = 0; i < 400; i++) counts[c.indexOf(b.pick(c))]!++;
  t.same(counts, [300, 100]);
});

t.test('random honours weights within 3 %', async (t) => {
  const counts = histogram('random', endpoints([1, 2, 7]), 100_000);
  [0.1, 0.2, 0.7].forEach((share, i) => t.ok(Math.abs(counts[i]! / 100_000 - share) < 0.03, `endpoint ${i}: ${counts[i]}`));
});

t.test('least-request picks the endpoint with the fewest requests in flight, relative to weight', async (t) => {
  const list = endpoints([1, 1, 2]);
  list[0]!.inFlight = 3; list[1]!.inFlight = 1; list[2]!.inFlight = 4;
  t.equal(createBalancer('least-request').pick(list), list[1]);
  list[2]!.inFlight = 1;
  t.equal(createBalancer('least-request').pick(list), list[2]);
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
