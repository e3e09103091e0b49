import t from 'tap';
import { LoadRecorder } from '../../gateway/signals/load-recorder.js';
import { SummedLoad } from '../../gateway/signals/summed-load.js';

/** One clock for every "process": the shared clock of a cluster. */
function clock(start = 1_700_000_000_250) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

/** A worker as the cluster runs it: its own recorder, shipped to the primary every `ship()` (the current second again). */
function worker(id: number, sum: SummedLoad, now: () => number) {
  const rec = new LoadRecorder(now);
  rec.configure('svc', 60_000);
  let from = -Infinity;
  return {
    rec,
    ship(ready: [string, number][] = [['svc', 2]]) {
      const { at, services } = rec.snapshot(from);
      sum.receive(id, at, services, new Map(ready));
      from = Math.floor(at / 1000);
    },
  };
}

t.test('the primary reads the sum of the workers: the same signals as one recorder that saw every request', async (t) => {
  const c = clock();
  const sum = new SummedLoad(c.now);
  sum.configure('svc', 60_000);
  const all = new LoadRecorder(c.now);
  all.configure('svc', 60_000);
  // The primary reads from the start (its loop ticks), as the single recorder would.
  sum.signals('svc', 60_000, 6_000);
  all.signals('svc', 60_000, 6_000);
  const a = worker(1, sum, c.now);
  const b = worker(2, sum, c.now);
  // 20 s: worker 1 gets 7 requests per second of 20 ms (one 5xx), worker 2 gets 3 of 300 ms; shipped every 400 ms.
  for (let tick = 0; tick < 50; tick++) {
    for (let k = 0; k < (tick % 5 === 0 ? 3 : 2); k++) {
      for (const [w, ms, error] of [[a, 20, k === 0 && tick % 10 === 0], [b, 300, false]] as const) {
        w.rec.started('svc'); all.started('svc');
        c.advance(ms / 10);
        w.rec.finished('svc', ms, error); all.finished('svc', ms, error);
      }
    }
    c.advance(400 - 330 * (tick % 5 === 0 ? 0.3 : 0.2));
    a.ship();
    b.ship();
    b.ship();   // a repeated shipment changes nothing
  }
  // One request in flight on each worker at the end, and one held on worker 2.
  a.rec.started('svc'); b.rec.started('svc'); all.started('svc'); all.started('svc');
  b.rec.waiting('svc', 1); all.waiting('svc', 1);
  c.advance(700);
  a.ship();
  b.ship();
  const got = sum.signals('svc', 60_000, 6_000);
  const want = all.signals('svc', 60_000, 6_000);
  for (const w of ['stable', 'panic'] as const) {
    for (const k of ['requests', 'completed', 'latencyP50Ms', 'latencyP95Ms', 'latencyP99Ms', 'errorRatio', 'spanMs'] as const) {
      t.equal(got[w][k], want[w][k], `${w} ${k}`);
    }
    t.ok(Math.abs(got[w].requestsPerSecond - want[w].requestsPerSecond) < 1e-9, `${w} rate ${got[w].requestsPerSecond}`);
    t.ok(Math.abs(got[w].inFlightMean - want[w].inFlightMean) < 1e-9, `${w} in flight ${got[w].inFlightMean} vs ${want[w].inFlightMean}`);
    t.ok(Math.abs(got[w].waitingMean - want[w].waitingMean) < 1e-9, `${w} waiting ${got[w].waitingMean}`);
  }
  t.equal(got.stable.requests, 50 * 2 * 2 + 10 * 2 + 2, 'every request counted once');
  t.same([got.inFlight, got.waiting, got.idleMs], [2, 1, 0]);
  t.equal(sum.readyEndpoints('svc'), 2, 'ready: what the workers list, not their sum');
});

t.test('between shipments, in flight and waiting count as held since the last snapshot', async (t) => {
  const c = clock();
  const sum = new SummedLoad(c.now);
  const a = worker(1, sum, c.now);
  c.advance(5000);
  for (let i = 0; i < 4; i++) a.rec.started('svc');
  a.ship();
  c.advance(1000);   // no shipment for 1 s: 4 in flight all along
  const panic = sum.signals('svc', 60_000, 6_000).panic;
  t.ok(Math.abs(panic.inFlightMean * panic.spanMs - 4000) < 1e-6, `4 requests × 1 s (${panic.inFlightMean} over ${panic.spanMs} ms)`);
});

t.test('a worker that exits stops counting in flight at once, its finished traffic stays for the window, a restart counts afresh', async (t) => {
  const c = clock();
  const sum = new SummedLoad(c.now);
  sum.configure('svc', 10_000);
  const a = worker(1, sum, c.now);
  const b = worker(2, sum, c.now);
  for (let i = 0; i < 10; i++) { a.rec.started('svc'); a.rec.finished('svc', 5, false); }
  for (let i = 0; i < 3; i++) a.rec.started('svc');
  b.rec.started('svc');
  c.advance(500);
  a.ship([['svc', 3]]);
  b.ship([['svc', 2]]);
  t.same([sum.signals('svc', 10_000, 6_000).inFlight, sum.readyEndpoints('svc')], [4, 3]);

  sum.dropWorker(1);
  const after = sum.signals('svc', 10_000, 6_000);
  t.equal(after.inFlight, 1, 'the dead worker\'s requests in flight are gone');
  t.equal(after.stable.requests, 14, 'what it served is still in the window');
  t.equal(sum.readyEndpoints('svc'), 2, 'its ready count is gone too');
  a.ship();
  t.equal(sum.signals('svc', 10_000, 6_000).stable.requests, 14, 'a message still in the pipe from the dead worker is ignored');

  // Its replacement (a new worker id) starts from zero and adds to the sum.
  const a2 = worker(3, sum, c.now);
  a2.rec.started('svc');
  c.advance(100);
  a2.ship();
  t.same([sum.signals('svc', 10_000, 6_000).inFlight, sum.signals('svc', 10_000, 6_000).stable.requests], [2, 15]);

  // 20 s later the dead worker's seconds have left the 10 s window (and its entry is pruned).
  c.advance(20_000);
  b.ship();
  a2.ship();
  const late = sum.signals('svc', 10_000, 6_000);
  t.same([late.stable.requests, late.inFlight], [0, 2], 'old traffic aged out; the live gauges remain');
});

t.test('idle time, a new window length and forgotten services follow the recorder', async (t) => {
  const c = clock();
  const sum = new SummedLoad(c.now);
  sum.configure('svc', 60_000);
  const a = worker(1, sum, c.now);
  a.rec.started('svc');
  c.advance(200);
  a.rec.finished('svc', 200, false);
  a.ship();
  c.advance(3000);
  t.equal(sum.signals('svc', 60_000, 6_000).idleMs, 3000, 'idle since the last request finished in any worker');
  sum.configure('svc', 30_000);
  const fresh = sum.signals('svc', 30_000, 6_000);
  t.same([fresh.stable.requests, fresh.recordingMs], [0, 0], 'a new window length starts afresh');
  sum.retain(new Set());
  t.equal(sum.signals('gone', 60_000, 6_000).stable.requests, 0);
});
