import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import t from 'tap';
import { binOf, binUpperMs, BIN_COUNT, quantileOf } from '../../gateway/signals/latency-bins.js';
import { LoadRecorder } from '../../gateway/signals/load-recorder.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

t.test('latency bins: log-spaced, a percentile within ±10 % of the true value', async (t) => {
  t.equal(binOf(0), 0);
  t.equal(binOf(0.1), 0);
  t.equal(binOf(1e9), BIN_COUNT - 1, 'everything past ~183 s in the last bin');
  for (let i = 1; i < BIN_COUNT - 1; i++) t.ok(binUpperMs(i) > binUpperMs(i - 1));
  for (const ms of [0.7, 3, 12.5, 80, 250, 999, 4000, 60_000]) {
    const bins = new Array(BIN_COUNT).fill(0);
    bins[binOf(ms)] = 1;
    const p = quantileOf(bins, 1, 0.5) as number;
    t.ok(Math.abs(p / ms - 1) <= 0.1, `${ms} ms reads as ${p.toFixed(2)} ms`);
  }
  t.equal(quantileOf(new Array(BIN_COUNT).fill(0), 0, 0.5), null);
});

t.test('rates, percentiles and error ratio over the stable and panic windows', async (t) => {
  const c = clock();
  const rec = new LoadRecorder(c.now);
  rec.configure('svc', 60_000);
  // 60 s at 10 requests per second, each 20 ms, one in ten a 5xx; then 6 s at 50 rps of 200 ms.
  for (let s = 0; s < 60; s++) {
    for (let k = 0; k < 10; k++) {
      rec.started('svc');
      c.advance(20);
      rec.finished('svc', 20, k === 0);
      c.advance(80);
    }
  }
  for (let s = 0; s < 6; s++) {
    for (let k = 0; k < 50; k++) {
      rec.started('svc');
      rec.finished('svc', 200, false);
      c.advance(20);
    }
  }
  const sig = rec.signals('svc', 60_000, 6_000);
  t.equal(sig.panic.requests, 300);
  t.ok(Math.abs(sig.panic.requestsPerSecond - 50) < 1, `panic rps ${sig.panic.requestsPerSecond}`);
  t.ok(Math.abs((sig.panic.latencyP50Ms as number) / 200 - 1) < 0.1, `panic p50 ${sig.panic.latencyP50Ms}`);
  t.equal(sig.panic.errorRatio, 0);
  // The stable window holds the last 60 s: 54 s of the slow-rate part and the 6 s burst.
  t.ok(Math.abs(sig.stable.requests - (540 + 300)) <= 10, `stable requests ${sig.stable.requests}`);
  t.ok(Math.abs((sig.stable.latencyP50Ms as number) / 20 - 1) < 0.1, `stable p50 ${sig.stable.latencyP50Ms}`);
  t.ok(Math.abs((sig.stable.latencyP99Ms as number) / 200 - 1) < 0.1, `stable p99 ${sig.stable.latencyP99Ms}`);
  t.ok(Math.abs(sig.stable.errorRatio - 54 / 840) < 0.01, `error ratio ${sig.stable.errorRatio}`);
});

t.test('in flight: a time-weighted mean and a peak, held requests counted as waiting', async (t) => {
  const c = clock(5_000_500);
  const rec = new LoadRecorder(c.now);
  // 4 requests in flight for 3 s, then 0 for 3 s: the 6 s mean is 2, the peak 4.
  for (let i = 0; i < 4; i++) rec.started('svc');
  c.advance(3000);
  for (let i = 0; i < 4; i++) rec.finished('svc', 3000, false);
  c.advance(3000);
  const sig = rec.signals('svc', 60_000, 6_000);
  t.ok(Math.abs(sig.panic.inFlightMean - 2) < 0.01, `mean ${sig.panic.inFlightMean}`);
  t.equal(sig.panic.inFlightPeak, 4);
  t.equal(sig.inFlight, 0);
  t.equal(sig.idleMs, 3000, 'idle since the last request finished');
  t.ok(Math.abs(sig.stable.inFlightMean - 2) < 0.01, 'right after start-up the stable window averages what it saw (6 s), not 60 s of zeros');
  t.equal(sig.stable.spanMs, 6000);
  rec.waiting('svc', 1);
  rec.waiting('svc', 1);
  c.advance(1000);
  const w = rec.signals('svc', 60_000, 6_000);
  t.equal(w.waiting, 2);
  t.equal(w.panic.waitingPeak, 2);
  t.equal(w.idleMs, 0, 'requests waiting: not idle');
});

t.test('demand is what arrives: an overloaded service that finishes few requests still shows its full request rate', async (t) => {
  const c = clock();
  const rec = new LoadRecorder(c.now);
  for (let s = 0; s < 6; s++) {
    for (let k = 0; k < 100; k++) rec.started('svc');
    for (let k = 0; k < 20; k++) rec.finished('svc', 900, false);
    c.advance(1000);
  }
  const w = rec.signals('svc', 60_000, 6_000).panic;
  t.equal(w.requests, 600);
  t.equal(w.completed, 120);
  t.ok(Math.abs(w.requestsPerSecond - 100) < 1, `rate ${w.requestsPerSecond}`);
  t.ok(w.inFlightPeak >= 480, 'the backlog shows in flight');
});

t.test('a long gap leaves nothing stale in the ring; services are independent and forgotten when dropped', async (t) => {
  const c = clock();
  const rec = new LoadRecorder(c.now);
  rec.configure('a', 10_000);
  for (let i = 0; i < 100; i++) { rec.started('a'); rec.finished('a', 5, true); }
  rec.started('b');
  c.advance(3_600_000);
  const a = rec.signals('a', 10_000, 6_000);
  t.equal(a.stable.requests, 0, 'an hour later the window is empty');
  t.equal(a.stable.errorRatio, 0);
  t.equal(a.stable.latencyP95Ms, null);
  t.ok(Math.abs(rec.signals('b', 60_000, 6_000).stable.inFlightMean - 1) < 0.01, 'b has had 1 in flight all along');
  rec.retain(new Set(['a']));
  t.equal(rec.signals('b', 60_000, 6_000).inFlight, 0, 'b was forgotten');
  rec.finished('nobody', 1, false);
  t.pass('a finish for an unknown service is ignored');
});

t.test('the hot path allocates nothing per request', async (t) => {
  // A still clock: what the recorder allocates as time passes (its per-second buckets) is not per request.
  const rec = new LoadRecorder(() => 1_000);
  rec.configure('svc', 60_000);
  const requests = () => { for (let i = 0; i < 1_000_000; i++) { rec.started('svc'); rec.finished('svc', i % 400, i % 50 === 0); } };
  requests();   // warm up until the code is optimized
  // Counted in young-generation collections, not heap size (a collection during the loop hides any growth): 16 bytes
  // per request would be 16 MB, dozens of scavenges. The least of three rounds, so that the test runner's own work
  // in one round does not count.
  let scavenges = Infinity;
  for (let round = 0; round < 3; round++) scavenges = Math.min(scavenges, await minorGcsDuring(requests));
  t.ok(scavenges <= 1, `${scavenges} young-generation collections over 1M requests (the least of 3 rounds)`);
});

/** How many young-generation collections (scavenges) ran while `run` did. */
async function minorGcsDuring(run: () => void): Promise<number> {
  const gcs: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => { gcs.push(...list.getEntries()); });
  observer.observe({ entryTypes: ['gc'] });
  run();
  await new Promise((resolve) => setTimeout(resolve, 20));   // entries are delivered after the fact
  observer.disconnect();
  return gcs.filter((e) => ((e as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
}

t.test('a new window length starts the history afresh and keeps the in-flight and waiting gauges', async (t) => {
  const c = clock();
  const rec = new LoadRecorder(c.now);
  rec.configure('svc', 60_000);
  for (let i = 0; i < 10; i++) { rec.started('svc'); rec.finished('svc', 5, false); }
  rec.started('svc');
  rec.waiting('svc', 1);
  c.advance(1000);
  rec.configure('svc', 60_000);
  t.equal(rec.signals('svc', 60_000, 6_000).stable.requests, 11, 'the same length keeps the history (11 started)');
  rec.configure('svc', 30_000);
  const fresh = rec.signals('svc', 30_000, 6_000);
  t.same([fresh.stable.requests, fresh.recordingMs], [0, 0], 'the history starts afresh');
  t.same([fresh.inFlight, fresh.waiting], [1, 1], 'the gauges carry over');
});
