import t from 'tap';
import { PrimaryAsks } from '../../gateway/cluster/primary-asks.js';
import type { ToPrimary, WorkerFigures } from '../../gateway/cluster/messages.js';

/** A worker's side of the asks, with the messages it sends and a primary that can be switched off. */
function asks() {
  const sent: ToPrimary[] = [];
  let connected = true;
  const own = (what: WorkerFigures['what']): Promise<WorkerFigures> =>
    Promise.resolve(what === 'metrics'
      ? { what, snapshot: { routes: { keys: ['own'], values: new Float64Array(0) }, metrics: [] } }
      : { what, snapshot: null });
  const a = new PrimaryAsks((m) => sent.push(m), () => connected, own);
  return { a, sent, disconnect: () => { connected = false; } };
}

t.test('figures and reloads are asked of the primary and resolved by its answers, each by its id', async (t) => {
  const { a, sent } = asks();
  const metrics = a.collect('metrics');
  const reload = a.reload();
  const figures = a.collect('figures');
  t.same(sent.map((m) => m.type), ['collect-request', 'reload-request', 'collect-request']);
  const ids = sent.map((m) => (m as { id: number }).id);
  t.equal(new Set(ids).size, 3, 'every ask has its own id');
  const parts: WorkerFigures[] = [{ what: 'figures', snapshot: null }, { what: 'figures', snapshot: null }];
  t.ok(a.receive({ type: 'collect-answer', id: ids[2]!, parts }));
  t.ok(a.receive({ type: 'reload-answer', id: ids[1]!, run: 4, result: { result: 'unchanged', generation: 1, hash: 'h' } }));
  t.equal(await figures, parts);
  t.match(await reload, { run: 4, result: { result: 'unchanged' } });
  t.notOk(a.receive({ type: 'reopen-log' }), 'other messages are not its own');
  t.ok(a.receive({ type: 'collect-answer', id: ids[2]!, parts: [] }), 'an answer to an id already answered is still taken as its kind of message');
  const late = await Promise.race([metrics.then(() => 'answered'), Promise.resolve('waiting')]);
  t.equal(late, 'waiting', 'the metrics ask still waits for its own answer');
});

t.test('when the primary dies, waiting asks are answered: figures from this worker alone, reloads refused', async (t) => {
  const { a, disconnect } = asks();
  const metrics = a.collect('metrics');
  const figures = a.collect('figures');
  const reload = a.reload();
  disconnect();
  a.primaryGone();
  t.same((await metrics).map((p) => p.what), ['metrics'], 'only the kind that was asked for is gathered');
  t.same((await figures).map((p) => p.what), ['figures']);
  t.match((await metrics).find((p) => p.what === 'metrics'), { snapshot: { routes: { keys: ['own'] } } });
  t.match((await figures).find((p) => p.what === 'figures'), { what: 'figures', snapshot: null });
  t.match(await reload, { run: 0, result: { result: 'refused', message: 'the cluster primary is gone' } });
  // Asked after that: answered at once, without a message to the gone primary.
  t.same((await a.collect('metrics')).map((p) => p.what), ['metrics']);
  t.match(await a.reload(), { result: { result: 'refused' } });
});
