import t from 'tap';
import type { WindowSignals } from '../../gateway/plugin-api/scaler.js';
import { decide, INITIAL_STATE, recordScale, type PolicyState } from '../../gateway/scaling/scale-policy.js';
import { S, T0, specOf } from '../helpers/scale-policy-fixtures.js';

const SPEC = specOf({ latency: { percentile: 95, ms: 150 } });

/** Replicas of 200 rps each, 15 ms on an idle one, processor sharing: p95 = ln 20 × 15 ms ÷ (1 − ρ). */
const p95Of = (rps: number, replicas: number) => (Math.log(20) * 15) / (1 - Math.min(0.95, rps / replicas / 200));

function win(rps: number, replicas: number, windowMs: number): WindowSignals {
  const requests = (rps * windowMs) / S;
  const p95 = p95Of(rps, replicas);
  return {
    spanMs: windowMs, windowMs, requests, completed: requests, requestsPerSecond: rps, inFlightMean: 0, inFlightPeak: 0,
    latencyP50Ms: p95 / 4.3, latencyP95Ms: p95, latencyP99Ms: p95 * 1.54, errorRatio: 0, waitingMean: 0, waitingPeak: 0,
  };
}

t.test('a latency target at a rate that does not vary keeps its replicas: no slope is read into a flat fit', async (t) => {
  // 1246 rps on 9 replicas is 138 rps each, p95 146 ms against a target of 150: 9 is right. With every point of the
  // fit at the same rate per replica there is no slope to fit; read as 0 it means replicas that never slow down.
  let state: PolicyState = INITIAL_STATE;
  let current = 9;
  const seen: number[] = [];
  for (let k = 0; k < 300; k++) {
    const now = T0 + k * S;
    const r = decide(SPEC, state, {
      now, current, ready: current, stable: win(1246, current, 60 * S), panic: win(1246, current, 6 * S), inFlight: 0,
      waiting: 0, idleMs: 0, recordingMs: 3600 * S, resources: null, scheduleFloor: 0,
    });
    state = recordScale(r.state, now, current, r.decision.desired);
    current = r.decision.desired;
    seen.push(current);
  }
  t.equal(Math.min(...seen), 9, `stays at 9 (${seen.filter((n, i) => i === 0 || n !== seen[i - 1]).join(' → ')})`);
});
