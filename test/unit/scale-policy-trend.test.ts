import t from 'tap';
import { addRate, projectedRise, type RateTrend } from '../../gateway/scaling/rate-trend.js';
import { decide, INITIAL_STATE, recordScale, type PolicyState } from '../../gateway/scaling/scale-policy.js';
import { S, T0, rateWindow, seeded, specOf } from '../helpers/scale-policy-fixtures.js';

const SPEC = specOf({ rps: 100 }, 60 * S);
const win = rateWindow;

/** The trend after feeding one rate per second, `rateAt(k)` for k = 0 … seconds − 1. */
function trendOf(seconds: number, rateAt: (k: number) => number): RateTrend | null {
  let trend: RateTrend | null = null;
  for (let k = 0; k < seconds; k++) trend = addRate(trend, T0 + k * S, rateAt(k));
  return trend;
}

t.test('the rate trend: a ramp projects its slope, steady noise and a step far less', async (t) => {
  const ramp = projectedRise(trendOf(300, (k) => 1000 + 2 * k), 60);
  t.ok(Math.abs(ramp - 120) < 0.5, `2 rps/s over 60 s: +120 rps (${ramp.toFixed(2)})`);
  t.equal(projectedRise(trendOf(300, (k) => 1600 - 2 * k), 60), 0, 'falling: nothing (only upward)');
  t.equal(projectedRise(trendOf(20, (k) => 1000 + 2 * k), 60), 0, 'too few points: nothing yet');
  // Epoch-sized times must not cost the slope its precision.
  let late: RateTrend | null = null;
  for (let k = 0; k < 300; k++) late = addRate(late, 1.8e12 + k * S, 1000 + 2 * k);
  t.ok(Math.abs(projectedRise(late, 60) - 120) < 0.5, 'the same at today\'s epoch');

  // ±10 % per second, 6 s means (what the short window sees), for an hour: the rise never amounts to a replica's 10 %.
  const random = seeded(7);
  const perSecond: number[] = [];
  let steady: RateTrend | null = null;
  let most = 0;
  for (let k = 0; k < 3600; k++) {
    perSecond.push(1200 * (1 + 0.1 * (2 * random() - 1)));
    const last6 = perSecond.slice(-6);
    steady = addRate(steady, T0 + k * S, last6.reduce((a, b) => a + b, 0) / last6.length);
    if (k >= 120) most = Math.max(most, projectedRise(steady, 60));
  }
  t.ok(most < 10, `steady 1200 rps ± 10 %: at most +${most.toFixed(1)} rps projected over 60 s`);

  // A step 600 → 1800 rps seen 30 s ago: a line fits it poorly, so it projects less than half of its raw slope.
  const step = trendOf(330, (k) => (k < 300 ? 600 : 1800));
  const raw = rawSlope(step as RateTrend) * 60;
  const damped = projectedRise(step, 60);
  t.ok(damped > 0 && damped < 0.5 * raw, `step: +${damped.toFixed(0)} rps projected, the raw slope says +${raw.toFixed(0)}`);
});

function rawSlope(f: RateTrend): number {
  const mx = f.x / f.w, my = f.y / f.w;
  return (f.xy / f.w - mx * my) / (f.xx / f.w - mx * mx);
}

t.test('on a ramp, the trend term asks for each replica one cold start before the rate needs it', async (t) => {
  // 1000 rps for 2 min, then +2 rps/s; 100 rps per replica; instances take 60 s to start (as last measured).
  const rate = (k: number) => 1000 + 2 * Math.max(0, k);
  let reason = '';
  const run = (trendOn: boolean) => {
    let state: PolicyState = { ...INITIAL_STATE, coldStartMs: 60 * S };
    let current = 10;
    const firstAsked = new Map<number, number>();
    for (let k = -120; k <= 1000; k++) {
      const now = T0 + k * S;
      if (!trendOn) state = { ...state, trend: null };
      const r = decide(SPEC, state, {
        // The windows' means are their centre's rate: 30 s old for the stable one, 3 s for the short one.
        now, current, ready: current, stable: win(rate(k - 30), 60 * S), panic: win(rate(k - 3), 6 * S), inFlight: 0,
        waiting: 0, idleMs: 0, recordingMs: 3600 * S, resources: null, scheduleFloor: 0,
      });
      if (trendOn && k === 400) reason = r.decision.reason;
      state = recordScale(r.state, now, current, r.decision.desired);
      for (let n = current + 1; n <= r.decision.desired; n++) if (!firstAsked.has(n)) firstAsked.set(n, k);
      current = r.decision.desired;
    }
    return firstAsked;
  };
  const withTrend = run(true), without = run(false);
  for (const n of [20, 25, 30]) {
    const neededAt = ((n - 1) * 100 - 1000) / 2;   // the rate passes (n − 1) replicas' worth then
    const asked = withTrend.get(n) as number;
    t.ok(asked <= neededAt - 55 && asked >= neededAt - 70, `replica ${n}: asked for at ${asked} s, needed from ${neededAt} s`);
    t.ok((without.get(n) as number) > neededAt, `without the trend, replica ${n} is asked for at ${without.get(n)} s`);
  }
  t.match(reason, /trend \+12\d(\.\d)? rps in 63 s/, 'the reason says what the trend added');
  // Before the ramp the rate was flat: the count stayed where it was.
  t.notOk([...withTrend.values()].some((k) => k < 0), 'nothing asked for while the rate was steady');
});
