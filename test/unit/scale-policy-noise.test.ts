import t from 'tap';
import { addRate, rateNoise, type RateTrend } from '../../gateway/scaling/rate-trend.js';
import { decide, INITIAL_STATE, recordScale, type PolicyState } from '../../gateway/scaling/scale-policy.js';
import { S, T0, rateWindow, seeded, specOf } from '../helpers/scale-policy-fixtures.js';

const SPEC = specOf({ rps: 140 });
const win = rateWindow;

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Runs the policy every second over per-second rates; the windows are their means (60 s and 6 s). */
function replay(rates: readonly number[], start: number) {
  let state: PolicyState = INITIAL_STATE;
  let current = start;
  const counts: number[] = [], recommended: number[] = [];
  let changes = 0;
  for (let k = 0; k < rates.length; k++) {
    const now = T0 + k * S;
    const seen = rates.slice(0, k + 1);
    const r = decide(SPEC, state, {
      now, current, ready: current, stable: win(mean(seen.slice(-60)), 60 * S), panic: win(mean(seen.slice(-6)), 6 * S), inFlight: 0,
      waiting: 0, idleMs: 0, recordingMs: 3600 * S, resources: null, scheduleFloor: 0,
    });
    if (r.decision.desired !== current) changes++;
    state = recordScale(r.state, now, current, r.decision.desired);
    current = r.decision.desired;
    counts.push(current);
    recommended.push(r.decision.recommended);
  }
  return { counts, recommended, changes };
}

t.test('steady noisy load keeps the count its mean needs: the short window\'s noise does not round up to a replica', async (t) => {
  // 1200 rps ± 10 % per second for an hour: 8.6 replicas' worth of 140 rps, so 9; a 6 s mean strays ±28 rps (1σ),
  // and one stray past 1260 rps would ask for a 10th, which the 10 % headroom on the way down then keeps for good.
  const random = seeded(5);
  const rates = Array.from({ length: 3600 }, () => 1200 * (1 + 0.1 * (2 * random() - 1)));
  const { counts, changes } = replay(rates, 9);
  t.equal(Math.max(...counts), 9, `never a 10th replica (${counts.filter((n, i) => i === 0 || n !== counts[i - 1]).join(' → ')})`);
  t.equal(changes, 0, 'no scale event at all');
});

t.test('a step is not held back by the noise band: the band a step widens is capped at half the tolerance', async (t) => {
  // 600 rps ± 10 % for 10 minutes, then 1800: each evaluation after the step recommends (before the rate policies)
  // what its short window needs less at most 5 % of the stable window's rate, however wide the step makes the band.
  const random = seeded(9);
  const rates = Array.from({ length: 640 }, (_, k) => (k < 600 ? 600 : 1800) * (1 + 0.1 * (2 * random() - 1)));
  const { counts, recommended } = replay(rates, 5);
  t.equal(counts[599], 5, 'before the step: 600 rps needs 5');
  for (let k = 600; k < 640; k++) {
    const short = mean(rates.slice(0, k + 1).slice(-6)), stable = mean(rates.slice(0, k + 1).slice(-60));
    const least = Math.ceil((short - 0.05 * stable) / 140);
    if ((recommended[k] as number) < least) t.fail(`${k - 599} s into the step: ${recommended[k]} recommended for a short window of ${short.toFixed(0)} rps`);
  }
  t.ok((recommended[605] as number) >= 12, `6 s into the step: ${recommended[605]} recommended (1800 rps needs 13)`);
});

t.test('once the noise is measured, the way down keeps that much headroom (at least half the tolerance), not all of it', async (t) => {
  // 1180 rps ± 1 % per second on 10 replicas: 8.4 replicas' worth. 10 % of headroom (9.3) would keep 10; the noise
  // measured (2σ of a 6 s mean, ~0.5 %) is less than half the tolerance, so 5 % is kept: 8.85 → 9.
  const random = seeded(3);
  const rates = Array.from({ length: 600 }, () => 1180 * (1 + 0.01 * (2 * random() - 1)));
  const { counts, changes } = replay(rates, 10);
  t.equal(counts.at(-1), 9, `down to 9 (${counts.filter((n, i) => i === 0 || n !== counts[i - 1]).join(' → ')})`);
  t.equal(changes, 1, 'in one move');
});

t.test('the rate\'s noise: the standard deviation around its line, and how much of the variance the line explains', async (t) => {
  const trendOf = (rateAt: (k: number) => number, seconds = 600) => {
    let trend: RateTrend | null = null;
    for (let k = 0; k < seconds; k++) trend = addRate(trend, T0 + k * S, rateAt(k));
    return trend;
  };
  // Alternating ±30 rps around 1200: a standard deviation of 30, so a band of about 60.
  const steady = rateNoise(trendOf((k) => 1200 + (k % 2 === 0 ? 30 : -30)));
  t.ok(steady !== null && Math.abs(steady.sd - 30) < 1 && steady.explained < 0.01, `±30 rps: a standard deviation of ${steady?.sd.toFixed(1)} rps, nothing a line explains`);
  const ramp = rateNoise(trendOf((k) => 1000 + 2 * k));
  t.ok(ramp !== null && ramp.sd < 0.01 && ramp.explained > 0.999, 'a clean ramp: no noise, all of it explained by the line');
  t.equal(rateNoise(trendOf(() => 1200, 20)), null, 'too few points: not measured yet');
});
