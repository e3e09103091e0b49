import { randomUUID } from 'node:crypto';
import t from 'tap';
import { newRequestId, requestIdFrom } from '../../gateway/proxy/request-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

t.test('new ids are distinct version-4 UUIDs, across many batches', async (t) => {
  const ids = Array.from({ length: 20_000 }, () => newRequestId());
  t.same(ids.filter((id) => !UUID_V4.test(id)), [], 'every id is a lower-case version-4 UUID');
  t.equal(new Set(ids).size, ids.length, 'no id repeats');
  t.equal(ids[0]?.length, randomUUID().length);
  // Each of the 30 free hex digits is random: over 20 000 ids, every digit value shows up at every free position.
  const free = [...'xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx'].flatMap((c, i) => (c === 'x' ? [i] : []));
  const missing = free.filter((i) => new Set(ids.map((id) => id[i])).size !== 16);
  t.same(missing, [], 'all 16 hex digits appear at each random position');
  t.same(new Set(ids.map((id) => id[19])), new Set(['8', '9', 'a', 'b']), 'the variant digit takes its 4 values');
});

t.test('a valid id from the client is kept; anything else gets a new one', async (t) => {
  t.equal(requestIdFrom('client-id-1'), 'client-id-1');
  for (const bad of [undefined, '', 'x'.repeat(129), 'a b', ['a', 'b']]) t.match(requestIdFrom(bad), UUID_V4, JSON.stringify(bad));
});
