import t from 'tap';
import { createBuiltinRegistry } from '../../plugins/index.js';
import type { ToPrimary, ToWorker } from '../../gateway/cluster/messages.js';
import { WorkerScaling } from '../../gateway/cluster/worker-scaling.js';
import { parseRoutes } from '../../gateway/config/load-routes-file.js';
import { LoadRecorder } from '../../gateway/signals/load-recorder.js';
import type { DiscoveryUpdate } from '../../gateway/plugin-api/index.js';
import type { ScalingDecisionRecord } from '../../gateway/scaling/decision-history.js';
import type { ServiceScalingStatus } from '../../gateway/scaling/scaling-control.js';
import { PoolManager } from '../../gateway/upstream/pool-manager.js';
import { captureLogger } from '../helpers/capture-logger.js';

const config = parseRoutes(`services:
  app:
    discovery: { type: scaler }
    scaling: { scaler: { type: process, command: [node, app.js] } }
  plain:
    discovery: { type: static, endpoints: ["http://127.0.0.1:9"] }
routes:
  - { match: { path: /app }, service: app }
  - { match: { path: / }, service: plain }
`, 'routes.yaml', createBuiltinRegistry());

function setup() {
  let now = 1_700_000_000_000;
  const sent: ToPrimary[] = [];
  let listener: ((m: ToWorker) => void) | undefined;
  const observed: string[] = [];
  const load = new LoadRecorder(() => now);
  const scaling = new WorkerScaling({
    load, log: captureLogger().log, readyEndpoints: (s) => (s === 'app' ? 2 : 0),
    observer: {
      scalingDecision: (d) => observed.push(`decision ${d.service} ${d.current}→${d.desired} at ${d.at}`),
      replicas: (s, desired, current) => observed.push(`replicas ${s} ${desired}/${current}`),
    },
  }, { send: (m) => sent.push(m), listen: (l) => { listener = l; return () => { listener = undefined; }; } });
  scaling.sync(config);
  return {
    scaling, load, sent, observed,
    advance: (ms: number) => { now += ms; },
    fromPrimary: (m: ToWorker) => listener?.(m),
    loads: () => sent.filter((m): m is Extract<ToPrimary, { type: 'load' }> => m.type === 'load'),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

t.test('held requests ship the load at once, one shipment for many, with the wake and the ready counts of scaled services', async (t) => {
  const w = setup();
  w.load.waiting('app', 1);
  w.scaling.wake('app');
  w.load.waiting('app', 1);
  w.scaling.wake('app');
  await tick();
  const [first] = w.loads();
  t.equal(w.loads().length, 1, 'coalesced');
  t.same(first?.wake, ['app']);
  t.same(first?.ready, [['app', 2]], 'only scaled services');
  t.equal(first?.services.find((s) => s.service === 'app')?.waiting, 2);

  // Later shipments re-send the current second (it grew) and never what is older than the last one's second.
  w.load.started('app');
  w.advance(1500);
  w.load.finished('app', 1500, false);
  w.scaling.wake('app');
  await tick();
  const second = w.loads()[1]?.services.find((s) => s.service === 'app');
  t.same(second?.seconds.map((s) => s.second), [1_700_000_000, 1_700_000_001], 'the last shipment\'s second again, and the new one');
  t.same(second?.seconds.map((s) => [s.arrivals, s.completed]), [[1, 0], [0, 1]]);
  await w.scaling.close();
  t.equal(w.loads().length, 3, 'closing ships what is left');
  w.scaling.wake('app');
  await tick();
  t.equal(w.loads().length, 3, 'and then nothing');
});

t.test('a scaler-fed pool lists what the primary broadcasts: nothing before the first set, then each new one', async (t) => {
  const w = setup();
  const app = config.services.get('app')!;
  t.equal(w.scaling.scalerEndpoints(config.services.get('plain')!), undefined, 'other services use their own discovery');
  const discovery = w.scaling.scalerEndpoints(app)!;
  const key = PoolManager.keyOf(app);
  t.same(w.sent.at(-1), { type: 'scaler-endpoints-watch', key });
  const abort = new AbortController();
  const updates: DiscoveryUpdate[] = [];
  const watching = (async () => { for await (const u of discovery.watch('app', abort.signal)) updates.push(u); })();
  await tick();
  t.same(updates, [], 'waits for the primary (its instances are starting)');
  w.fromPrimary({ type: 'scaler-endpoints', key: 'another', endpoints: [] });
  w.fromPrimary({ type: 'scaler-endpoints', key, endpoints: [{ address: 'http://127.0.0.1:4001', weight: 1 }] });
  await tick();
  w.fromPrimary({ type: 'scaler-endpoints', key, endpoints: [{ address: 'http://127.0.0.1:4001', weight: 1 }, { address: 'http://127.0.0.1:4002', weight: 1 }] });
  await tick();
  t.same(updates.map((u) => (u.kind === 'reset' ? u.endpoints.length : -1)), [1, 2], 'a reset per set');
  abort.abort();
  await watching;
  await discovery.close();
  await discovery.close();
  t.same(w.sent.filter((m) => m.type === 'scaler-endpoints-unwatch'), [{ type: 'scaler-endpoints-unwatch', key }], 'given back once');
  await w.scaling.close();
});

t.test('the primary\'s decisions and counts reach the metrics, status() and recentDecisions()', async (t) => {
  const w = setup();
  const record = { service: 'app', at: 1234, current: 1, desired: 2, outcome: 'applied', reason: 'demand' } as unknown as ScalingDecisionRecord;
  w.fromPrimary({ type: 'scaling-decision', record });
  const status = { service: 'app', current: 2, desired: 2 } as ServiceScalingStatus;
  w.fromPrimary({ type: 'scaling-replicas', service: 'app', desired: 2, current: 2, status });
  t.same(w.observed, ['decision app 1→2 at 1234', 'replicas app 2/2'], 'at the primary\'s time');
  t.same(w.scaling.recentDecisions('app'), [record]);
  t.same(w.scaling.recentDecisions(), [record]);
  t.same(w.scaling.status(), [status]);
  await w.scaling.close();
});
