import t from 'tap';
import { FleetLoad, type FleetReports, type RemoteLoad } from '../../gateway/fleet/fleet-load.js';
import { LoadRecorder } from '../../gateway/signals/load-recorder.js';

function clock(start = 1_700_000_000_250) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

/** Other gateways' reports as the fleet member keeps them: their recorders' totals, taken now. */
function reportsOf(recorders: LoadRecorder[], complete = () => true): FleetReports {
  return {
    complete,
    *remote(service: string): Iterable<RemoteLoad> {
      for (const r of recorders) yield { totals: r.totals(service, 60_000, 6_000), ageMs: 0 };
    },
  };
}

t.test('the leader reads its own load plus the other gateways\' reports: the signals of one recorder that saw every request', async (t) => {
  const c = clock();
  const own = new LoadRecorder(c.now);
  const other = new LoadRecorder(c.now);
  const all = new LoadRecorder(c.now);
  for (const r of [own, other, all]) r.configure('svc', 60_000);
  const fleet = new FleetLoad(own, reportsOf([other]));
  // 70 s: this gateway 2 requests per second of 50 ms, the other 6 of 200 ms (one 5xx in ten).
  for (let s = 0; s < 70; s++) {
    for (let k = 0; k < 6; k++) {
      const here = k < 2;
      const rec = here ? own : other;
      rec.started('svc'); all.started('svc');
      c.advance(here ? 50 : 20);
      const error = !here && s % 10 === 0 && k === 5;
      rec.finished('svc', here ? 50 : 200, error); all.finished('svc', here ? 50 : 200, error);
    }
    c.advance(1000 - 2 * 50 - 4 * 20);
  }
  other.started('svc'); all.started('svc');
  other.waiting('svc', 1); all.waiting('svc', 1);
  c.advance(300);
  const got = fleet.signals('svc', 60_000, 6_000);
  const want = all.signals('svc', 60_000, 6_000);
  for (const w of ['stable', 'panic'] as const) {
    for (const k of ['requests', 'completed', 'requestsPerSecond', 'latencyP50Ms', 'latencyP95Ms', 'errorRatio', 'spanMs'] as const) {
      t.equal(Math.round((got[w][k] as number) * 1000) / 1000, Math.round((want[w][k] as number) * 1000) / 1000, `${w}.${k}`);
    }
  }
  t.equal(got.inFlight, 1);
  t.equal(got.waiting, 1, 'a request held on another gateway counts');
  t.equal(got.recordingMs, want.recordingMs);
});

t.test('a report over a shorter span counts at its rate', async (t) => {
  const c = clock();
  const own = new LoadRecorder(c.now);
  own.configure('svc', 60_000);
  c.advance(60_000);
  own.signals('svc', 60_000, 6_000);
  const late = new LoadRecorder(c.now);   // a gateway that started 10 s ago
  late.configure('svc', 60_000);
  for (let s = 0; s < 10; s++) { for (let k = 0; k < 5; k++) { late.started('svc'); late.finished('svc', 10, false); } c.advance(1000); }
  const got = new FleetLoad(own, reportsOf([late])).signals('svc', 60_000, 6_000);
  t.ok(Math.abs(got.stable.requestsPerSecond - 5) < 0.6, `5 requests per second, not 50 over a minute: ${got.stable.requestsPerSecond}`);
});

t.test('while the reports may be incomplete (etcd unreachable) the window counts as not full and the service as busy: no scale-down, no idle-to-zero', async (t) => {
  const c = clock();
  const own = new LoadRecorder(c.now);
  own.configure('svc', 60_000);
  own.signals('svc', 60_000, 6_000);   // recording starts at the first read
  c.advance(120_000);
  let complete = true;
  const fleet = new FleetLoad(own, reportsOf([], () => complete));
  t.ok(fleet.signals('svc', 60_000, 6_000).recordingMs >= 60_000);
  t.ok(fleet.signals('svc', 60_000, 6_000).idleMs >= 60_000);
  complete = false;
  const s = fleet.signals('svc', 60_000, 6_000);
  t.equal(s.recordingMs, 0, 'the policy never scales down on a window that is not full');
  t.equal(s.idleMs, 0);
});
