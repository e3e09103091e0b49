import t from 'tap';
import { PrimaryAsks } from '../../gateway/cluster/primary-asks.js';
import type { ToPrimary, WorkerPart } from '../../gateway/cluster/messages.js';

/** A worker's side of the asks, with the messages it sends and a primary that can be switched off. */
function asks() {
  const sent: ToPrimary[] = [];
  let connected = true;
  const own = (what: WorkerPart['what']): Promise<WorkerPart> =>
    Promise.resolve(what === 'metrics'
      ? { what, snapshot: { routes: { keys: ['own'], values: new Float64Array(0) }, metrics: [] } }
      : { what, snapshot: null });
  const a = new PrimaryAsks((m) => sent.push(m), () => connected, own);
  return { a, sent, disconnect: () => { connected = false; } };
}

t.test('collects and reloads are asked of the primary and resolved by its answers, each by its id', async (t) => {
  const { a, sent } = asks();
  const metrics = a.collect('metrics');
  const reload = a.reload();
  const collected = a.collect('traffic-and-health');
  t.same(sent.map((m) => m.type), ['collect-request', 'reload-request', 'collect-request']);
  const ids = sent.map((m) => (m as { id: number }).id);
  t.equal(new Set(ids).size, 3, 'every ask has its own id');
  const parts: WorkerPart[] = [{ what: 'traffic-and-health', snapshot: null }, { what: 'traffic-and-health', snapshot: null }];
  t.ok(a.receive({ type: 'collect-answer', id: ids[2]!, parts }));
  t.ok(a.receive({ type: 'reload-answer', id: ids[1]!, run: 4, result: { result: 'unchanged', generation: 1, hash: 'h' } }));
  t.equal(await collected, parts);
  t.match(await reload, { run: 4, result: { result: 'unchanged' } });
  t.notOk(a.receive({ type: 'reopen-log' }), 'other messages are not its own');
  t.ok(a.receive({ type: 'collect-answer', id: ids[2]!, parts: [] }), 'an answer to an id already answered is still taken as its kind of message');
  const late = await Promise.race([metrics.then(() => 'answered'), Promise.resolve('waiting')]);
  t.equal(late, 'waiting', 'the metrics ask still waits for its own answer');
});

t.test('when the primary dies, waiting asks are answered: collects from this worker alone, reloads refused', async (t) => {
  const { a, disconnect } = asks();
  const metrics = a.collect('metrics');
  const collected = a.collect('traffic-and-health');
  const reload = a.reload();
  disconnect();
  a.primaryGone();
  t.same((await metrics).map((p) => p.what), ['metrics'], 'only the kind that was asked for is gathered');
  t.same((await collected).map((p) => p.what), ['traffic-and-health']);
  t.match((await metrics).find((p) => p.what === 'metrics'), { snapshot: { routes: { keys: ['own'] } } });
  t.match((await collected).find((p) => p.what === 'traffic-and-health'), { what: 'traffic-and-health', snapshot: null });
  t.match(await reload, { run: 0, result: { result: 'refused', message: 'the cluster primary is gone' } });
  // Asked after that: answered at once, without a message to the gone primary.
  t.same((await a.collect('metrics')).map((p) => p.what), ['metrics']);
  t.match(await a.reload(), { result: { result: 'refused' } });
});
