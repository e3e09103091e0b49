import t from 'tap';
import { Bulkhead } from '../../gateway/resilience/bulkhead.js';

t.test('slots up to capacity, then a queue in arrival order, then refusals', async (t) => {
  const b = new Bulkhead(1, 2);
  const started: string[] = [];
  t.equal(b.tryEnter(), true);
  t.equal(b.tryEnter(), false, 'no second slot');
  t.equal(b.wait(() => started.push('first')), true);
  t.equal(b.wait(() => started.push('second')), true);
  t.equal(b.wait(() => started.push('third')), false, 'the queue is full');
  b.leave();
  t.same(started, [], 'the waiter starts a microtask later');
  await Promise.resolve();
  t.same(started, ['first']);
  t.equal(b.tryEnter(), false, 'the freed slot went to the waiter, not to a newcomer');
  b.leave();
  await Promise.resolve();
  t.same(started, ['first', 'second']);
  b.leave();
  t.equal(b.tryEnter(), true, 'queue empty: the slot is free again');
  t.equal(b.wait(() => started.push('fourth')), true, 'the queue has room again');
});
