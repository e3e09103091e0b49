import t from 'tap';
import { gcra, GcraTable } from '../../gateway/policies/gcra.js';

t.test('a full bucket allows burst requests at once, then one per interval', async (t) => {
  let now = 1_000_000;
  const table = new GcraTable(() => now);
  const limit = { intervalMs: 100, burst: 3 };
  t.same([1, 2, 3, 4].map(() => table.take('k', limit).allowed), [true, true, true, false]);
  const refused = table.take('k', limit);
  t.same(refused, { allowed: false, remaining: 0, resetMs: 300, retryAfterMs: 100 });
  now += 99;
  t.equal(table.take('k', limit).allowed, false, 'one ms early');
  now += 1;
  t.same(table.take('k', limit), { allowed: true, remaining: 0, resetMs: 300, retryAfterMs: 0 });
  now += 1000;
  t.same(table.take('k', limit), { allowed: true, remaining: 2, resetMs: 100, retryAfterMs: 0 }, 'full again');
  t.equal(table.take('other', limit).remaining, 2, 'buckets are per key');
});

t.test('a bucket counted in another interval keeps its requests in the new limit', async (t) => {
  const now = 0;
  // Two requests used of 2 per 1800: TAT 3600. The limit becomes 4 per 900: the two still count, two are left.
  const raised = gcra({ tat: 3600, intervalMs: 1800 }, now, { intervalMs: 900, burst: 4 });
  t.same(raised.decision, { allowed: true, remaining: 1, resetMs: 2700, retryAfterMs: 0 });
  t.equal(gcra({ tat: 3600, intervalMs: 1800 }, now, { intervalMs: 1800, burst: 2 }).decision.allowed, false, 'unchanged limit: still empty');
});
