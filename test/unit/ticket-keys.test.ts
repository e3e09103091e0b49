import t from 'tap';
import { TICKET_KEY_PERIOD_MS, TICKET_SECRET_ENV, ticketKeysAt, ticketSecret } from '../../gateway/tls/ticket-keys.js';

t.test('ticket keys are the same within a period for one secret, and change at the period boundary', async (t) => {
  const secret = Buffer.alloc(32, 7);
  const start = 40 * TICKET_KEY_PERIOD_MS;
  const keys = ticketKeysAt(secret, start);
  t.equal(keys.length, 48, 'the 48 bytes setTicketKeys takes');
  t.same(ticketKeysAt(secret, start + TICKET_KEY_PERIOD_MS - 1), keys, 'the whole period');
  t.notSame(ticketKeysAt(secret, start + TICKET_KEY_PERIOD_MS), keys, 'a new period, new keys');
  t.notSame(ticketKeysAt(Buffer.alloc(32, 8), start), keys, 'another secret, other keys');
});

t.test('a worker takes the primary\'s secret from its environment once and removes it', async (t) => {
  const env: NodeJS.ProcessEnv = { [TICKET_SECRET_ENV]: 'ab'.repeat(32) };
  t.same(ticketSecret(env), Buffer.alloc(32, 0xab));
  t.notOk(TICKET_SECRET_ENV in env, 'a child process a plugin starts does not inherit it');
  const fresh = ticketSecret({});
  t.equal(fresh.length, 32, 'without one, a random secret');
  t.notSame(ticketSecret({}), fresh);
});
