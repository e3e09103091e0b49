import t from 'tap';
import { DecisionHistory, type ScalingDecisionRecord } from '../../gateway/scaling/decision-history.js';

const record = (service: string, at: number) => ({ service, at, current: 1, desired: 2, outcome: 'applied', reason: 'demand' }) as unknown as ScalingDecisionRecord;

t.test('keeps the latest decisions per service, lists all merged by time, forgets a dropped service', async (t) => {
  const h = new DecisionHistory(2);
  h.add(record('a', 1));
  h.add(record('b', 2));
  h.add(record('a', 3));
  h.add(record('a', 5));
  t.same(h.recent('a').map((r) => r.at), [3, 5], 'only the latest 2 of a');
  t.same(h.recent().map((r) => `${r.service}${r.at}`), ['b2', 'a3', 'a5'], 'all services, oldest first');
  h.forget('a');
  t.same(h.recent('a'), []);
  t.same([...h.services()], ['b']);
  (h.recent('b') as ScalingDecisionRecord[]).length = 0;
  t.equal(h.recent('b').length, 1, 'a caller cannot change what is kept');
});
