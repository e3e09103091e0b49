import t from 'tap';
import { backoffStepMs, sleep } from '../../gateway/plugin-api/index.js';

t.test('the backoff step doubles from initialMs per failure and stops at maxMs', async (t) => {
  const backoff = { initialMs: 100, maxMs: 1000 };
  t.same([1, 2, 3, 4, 5, 6].map((n) => backoffStepMs(n, backoff)), [100, 200, 400, 800, 1000, 1000]);
  t.equal(backoffStepMs(10_000, backoff), 1000, 'a long outage stays at maxMs');
  t.equal(backoffStepMs(10_000, { initialMs: 0, maxMs: 1000 }), 0, 'never 0 × Infinity');
});

t.test('sleep ends at once when its signal aborts, and never rejects', async (t) => {
  const ac = new AbortController();
  const slept = sleep(60_000, ac.signal);
  ac.abort(new Error('closing'));
  await t.resolves(slept);
  await t.resolves(sleep(60_000, AbortSignal.abort()), 'an aborted signal does not wait');
});
