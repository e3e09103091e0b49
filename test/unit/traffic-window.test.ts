import t from 'tap';
import { TrafficStats, TrafficWindow } from '../../gateway/admin/traffic-window.js';
import { binOf } from '../../gateway/signals/latency-bins.js';
import { LoadRecorder } from '../../gateway/signals/load-recorder.js';

t.test('rate, errors and percentiles per complete bucket, oldest first; the current partial bucket left out', async (t) => {
  let now = 1_000_000;   // a bucket boundary for 5 s buckets
  const w = new TrafficWindow(5000, 6, () => now);
  for (let i = 0; i < 100; i++) w.record(i < 90 ? 10 : 200, i >= 98);
  now += 5000;
  for (let i = 0; i < 10; i++) w.record(1, false);
  now += 2500;   // halfway through the second bucket
  let points = w.points();
  t.same(points.map((p) => p.t), [980_000, 985_000, 990_000, 995_000, 1_000_000], 'one point per complete bucket, the current one left out');
  const first = points[4]!;
  t.match(first, { requests: 100, rps: 20, errors: 2 });
  t.ok(Math.abs(first.p50Ms! - 10) / 10 < 0.1, `p50 ${first.p50Ms} within 10 % of 10 ms`);
  t.ok(Math.abs(first.p90Ms! - 10) / 10 < 0.1, `p90 ${first.p90Ms} is still 10 ms (90 of 100)`);
  t.ok(Math.abs(first.p99Ms! - 200) / 200 < 0.1, `p99 ${first.p99Ms} within 10 % of 200 ms`);
  t.match(points[0], { requests: 0, rps: 0, p50Ms: null, desiredReplicas: null });
  now += 2500;   // the second bucket is complete
  points = w.points();
  t.match(points.at(-1), { t: 1_005_000, requests: 10, rps: 2, errors: 0 }, 'rated over the whole bucket once complete');
});

t.test('the points start with the bucket the gateway started in, rated over its part after the start', async (t) => {
  let now = 1_000_000;
  const w = new TrafficWindow(5000, 60, () => now);
  const startedAt = 1_003_000;   // 2 s before the end of its bucket
  now = startedAt;
  for (let i = 0; i < 10; i++) w.record(1, false);
  now = 1_012_000;
  const points = w.points(startedAt);
  t.same(points.map((p) => p.t), [1_000_000, 1_005_000], 'no zeros for the minutes before the start');
  t.match(points[0], { requests: 10, rps: 5 }, '10 requests in the 2 s it ran, not 2/s over 5 s');
  t.equal(w.points().length, 59, 'without a start: the whole window');
});

t.test('buckets older than the window are forgotten when their ring position comes round again', async (t) => {
  let now = 0;
  const w = new TrafficWindow(1000, 3, () => now);
  w.record(5, false);
  now = 4000;   // slot 3, complete now, has the ring position of slot 0
  t.same(w.points().map((p) => p.requests), [0, 0], 'the old bucket is not shown as the newer one');
  w.record(5, false);
  now = 5000;
  t.same(w.points().map((p) => p.requests), [0, 1]);
  now = 10_000;
  t.same(w.summary(60_000).requests, 0);
});

t.test('summary merges the buckets of the last minute', async (t) => {
  let now = 0;
  const w = new TrafficWindow(5000, 60, () => now);
  for (let s = 0; s < 12; s++) {
    for (let i = 0; i < 10; i++) w.record(s === 11 ? 1000 : 2, s === 11);
    now += 5000;
  }
  now -= 1;   // end of the 12th bucket
  const sum = w.summary(60_000);
  t.equal(sum.requests, 120);
  t.equal(sum.errors, 10);
  t.equal(sum.rps, 2);
  t.ok(sum.p50Ms! < 2.2 && sum.p50Ms! > 1.8, `p50 ${sum.p50Ms}`);
  t.ok(sum.p99Ms! > 900 && sum.p99Ms! < 1100, `p99 ${sum.p99Ms}`);
});

t.test('the dashboard and the scaler read the same percentiles for the same requests (one histogram)', async (t) => {
  let now = 1_000_000;
  const window = new TrafficWindow(5000, 60, () => now);
  const load = new LoadRecorder(() => now);
  load.configure('svc', 60_000);
  // 1000 latencies spread from 0.05 ms to about 20 s, a few of them in each histogram bin.
  for (let i = 0; i < 1000; i++) {
    const ms = 0.05 * 1.013 ** i;
    window.record(ms, false);
    load.started('svc');
    load.finished('svc', ms, false);
    now += 10;
  }
  const dashboard = window.summary(60_000);
  const scaler = load.signals('svc', 60_000, 6_000).stable;
  t.equal(dashboard.requests, 1000);
  t.equal(scaler.completed, 1000);
  t.equal(dashboard.p99Ms, scaler.latencyP99Ms, `p99: dashboard ${dashboard.p99Ms} ms, scaler ${scaler.latencyP99Ms} ms`);
  t.equal(dashboard.p50Ms, scaler.latencyP50Ms, `p50: dashboard ${dashboard.p50Ms} ms, scaler ${scaler.latencyP50Ms} ms`);
});

t.test('latency buckets: monotonic, 4 per doubling, clamped at both ends', async (t) => {
  t.equal(binOf(0), 0);
  t.equal(binOf(0.1), 0);
  t.equal(binOf(0.2), 4);
  t.equal(binOf(1e9), 83);
  let last = -1;
  let monotonic = true;
  for (let ms = 0.05; ms < 100_000; ms *= 1.07) { const b = binOf(ms); if (b < last) monotonic = false; last = b; }
  t.ok(monotonic);
});

t.test('TrafficStats keeps one window per configured service', async (t) => {
  const stats = new TrafficStats(1000, 5, () => 0);
  const a = stats.window('a');
  t.equal(stats.window('a'), a);
  stats.window('b');
  stats.retain(['b']);
  t.same([...stats.entries()].map(([n]) => n), ['b']);
});

t.test('merged windows of several processes: buckets summed where their slots agree, the newest bucket wins a ring position', async (t) => {
  let now = 10_000;
  const a = new TrafficWindow(1000, 3, () => now);
  const b = new TrafficWindow(1000, 3, () => now);
  const stale = new TrafficWindow(1000, 3, () => now - 3000);   // its bucket sits at the same ring position, 3 s older
  for (let i = 0; i < 90; i++) a.record(10, false);
  for (let i = 0; i < 10; i++) b.record(200, true);
  b.replicas(3, 2);
  stale.record(1, false);
  now += 1000;
  const merged = TrafficWindow.merged([a.data(), b.data(), stale.data()], 1000, 3, () => now);
  const last = merged.points().at(-1)!;
  t.match(last, { requests: 100, errors: 10, desiredReplicas: 3, currentReplicas: 2 }, 'the last complete bucket of both, not the stale one');
  t.ok(Math.abs(last.p50Ms! - 10) / 10 < 0.1 && Math.abs(last.p99Ms! - 200) / 200 < 0.1, `percentiles over the summed histogram (p50 ${last.p50Ms}, p99 ${last.p99Ms})`);
  t.same(merged.summary(3000).requests, 100);
  t.same(TrafficWindow.merged([], 1000, 3, () => now).points().map((p) => p.requests), [0, 0], 'no window: all empty');
});
