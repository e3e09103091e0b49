import t from 'tap';
import type { PolicySpec, ScalingRules } from '../../gateway/config/scaling-config.js';
import type { ResourceUsage, WindowSignals } from '../../gateway/plugin-api/scaler.js';
import {
  decide, INITIAL_STATE, recordScale, scaleDownLimit, scaleUpLimit, type PolicyInput, type PolicyState,
} from '../../gateway/scaling/scale-policy.js';

const S = 1000;
const HPA_UP: ScalingRules = { stabilizationWindowMs: 0, policies: [{ type: 'percent', value: 100, periodMs: 15 * S }, { type: 'replicas', value: 4, periodMs: 15 * S }], selectPolicy: 'max' };
const HPA_DOWN: ScalingRules = { stabilizationWindowMs: 300 * S, policies: [{ type: 'percent', value: 100, periodMs: 15 * S }], selectPolicy: 'max' };
const NO_LIMIT: ScalingRules = { stabilizationWindowMs: 0, policies: [], selectPolicy: 'max' };

function spec(over: Partial<PolicySpec> = {}): PolicySpec {
  return {
    min: 1, max: 100, targets: { inFlight: 10 }, tolerance: 0.1, stableWindowMs: 60 * S, panicThreshold: 2,
    scaleUp: HPA_UP, scaleDown: HPA_DOWN, idleToZeroMs: 300 * S, minLatencySamples: 10, ...over,
  };
}

function win(over: Partial<WindowSignals> = {}): WindowSignals {
  return {
    spanMs: 60 * S, windowMs: 60 * S, requests: 1000, completed: 1000, requestsPerSecond: 0, inFlightMean: 0, inFlightPeak: 0,
    latencyP50Ms: null, latencyP95Ms: null, latencyP99Ms: null, errorRatio: 0, waitingMean: 0, waitingPeak: 0, ...over,
  };
}

/** A steady state unless told otherwise: stable and panic windows see the same in-flight mean. */
/** `inFlight`: the stable window's mean (and the short one's unless `panicInFlight`); `inFlightNow`: the gauge. */
function input(over: Partial<PolicyInput> & { inFlight?: number; panicInFlight?: number; inFlightNow?: number; resources?: ResourceUsage | null } = {}): PolicyInput {
  const { inFlight = 0, panicInFlight, inFlightNow, ...rest } = over;
  const current = rest.current ?? 1;
  return {
    now: 1_000_000, current, ready: current, stable: win({ inFlightMean: inFlight }), panic: win({ inFlightMean: panicInFlight ?? inFlight, windowMs: 6 * S, spanMs: 6 * S }),
    inFlight: inFlightNow, waiting: 0, idleMs: 0, recordingMs: 3600 * S, resources: null, scheduleFloor: 0, ...rest,
  };
}

function once(s: PolicySpec, i: PolicyInput, state: PolicyState = INITIAL_STATE) {
  return decide(s, state, i);
}

t.test('the HPA formula: desired = ceil(current × observed / target), per metric, highest wins', async (t) => {
  const cpu = (mean: number, instances: number): ResourceUsage => ({ instances, cpuCoresMean: mean, memoryBytesMean: null });
  // Kubernetes docs: "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be doubled".
  t.equal(once(spec({ targets: { cpuCores: 0.1 } }), input({ current: 2, resources: cpu(0.2, 2) })).decision.desired, 4, '200m vs 100m doubles');
  // "If the current value is instead 50m, you'll halve the number of replicas".
  t.equal(once(spec({ targets: { cpuCores: 0.1 } }), input({ current: 4, resources: cpu(0.05, 4) })).decision.desired, 2, '50m vs 100m halves');
  // The HPA walkthrough: 1 replica at 305 % with a 50 % target asks for ceil(6.1) = 7.
  t.equal(once(spec({ targets: { cpuCores: 0.5 }, scaleUp: NO_LIMIT }), input({ current: 1, resources: cpu(3.05, 1) })).decision.desired, 7, 'walkthrough 305 % / 50 % → 7');
  // With HPA's default scale-up policy (100 % or 4 pods per 15 s, the larger) the same step is limited to 5.
  const limited = once(spec({ targets: { cpuCores: 0.5 } }), input({ current: 1, resources: cpu(3.05, 1) })).decision;
  t.equal(limited.desired, 5);
  t.equal(limited.cause, 'rate-limited');
  // Demand: 42 in flight at a target of 10 per replica needs 5.
  t.equal(once(spec(), input({ current: 3, inFlight: 42 })).decision.desired, 5);
  // Several targets: the highest demanded count wins.
  const multi = once(spec({ targets: { inFlight: 10, rps: 100 } }), input({ current: 3, inFlight: 25, stable: win({ inFlightMean: 25, requestsPerSecond: 640 }) })).decision;
  t.equal(multi.desired, 7, 'rps 640 / 100 → 7 beats in-flight 25 / 10 → 3');
  t.same(multi.metrics.map((m) => [m.metric, m.replicas]), [['inFlight', 3], ['rps', 7]]);
});

t.test('tolerance: none on the way up; down only to a count that keeps 10 % of headroom', async (t) => {
  const cases: [number, number, number][] = [
    // [current, total in flight, expected] at a target of 10 per replica
    [10, 100, 10], [10, 101, 11], [10, 111, 12], [10, 95, 10], [10, 89, 10], [10, 81, 9], [10, 72, 8], [4, 41, 5], [4, 36, 4],
  ];
  for (const [current, inFlight, expected] of cases) {
    const d = once(spec({ scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } }), input({ current, inFlight })).decision;
    t.equal(d.desired, expected, `${current} replicas, ${inFlight} in flight → ${expected}`);
  }
  const within = once(spec(), input({ current: 10, inFlight: 95 })).decision;
  t.equal(within.cause, 'within-tolerance');
  t.equal(once(spec({ tolerance: 0, scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } }), input({ current: 10, inFlight: 89 })).decision.desired, 9, 'tolerance 0: down to the need');
});

t.test('scale-up rate policies, as HPA computes them (1 → 10 → 100 → 1000 at 900 % per 60 s)', async (t) => {
  const rules: ScalingRules = { stabilizationWindowMs: 0, policies: [{ type: 'percent', value: 900, periodMs: 60 * S }], selectPolicy: 'max' };
  const s = spec({ max: 5000, scaleUp: rules, panicThreshold: 0 });
  let state = INITIAL_STATE;
  let current = 1;
  const seen: number[] = [];
  for (const at of [0, 30, 60, 90, 120]) {
    const now = 1_000_000 + at * S;
    const r = decide(s, state, input({ now, current, inFlight: 100_000 }));
    state = recordScale(r.state, now, current, r.decision.desired);
    current = r.decision.desired;
    seen.push(current);
  }
  t.same(seen, [10, 10, 100, 100, 1000], 'one step per period; within a period the start-of-period count limits');
  t.equal(scaleUpLimit(0, [], HPA_UP, 0), 4, 'from zero the pods policy still allows 4 (a percent of 0 is 0)');
  t.equal(scaleUpLimit(10, [], HPA_UP, 0), 20, '100 % of 10 beats 4 pods');
  t.equal(scaleUpLimit(3, [], { ...HPA_UP, selectPolicy: 'min' }, 0), 6, 'min: the smaller change');
  t.equal(scaleUpLimit(3, [], { ...HPA_UP, selectPolicy: 'disabled' }, 0), 3, 'disabled: no scale-up');
});

t.test('scale-down rate policies: the HPA docs example (4 pods or 10 % per 60 s from 80 replicas)', async (t) => {
  const rules: ScalingRules = { stabilizationWindowMs: 0, policies: [{ type: 'replicas', value: 4, periodMs: 60 * S }, { type: 'percent', value: 10, periodMs: 60 * S }], selectPolicy: 'max' };
  t.equal(scaleDownLimit(80, [], rules, 0), 72, 'from 80: 10 % (8) beats 4 pods');
  t.equal(scaleDownLimit(72, [], rules, 0), 64, 'from 72: 10 % is 7.2, rounded up to 8 removed');
  t.equal(scaleDownLimit(30, [], rules, 0), 26, 'below 40 replicas the 4-pod policy allows more');
  const s = spec({ min: 1, max: 100, scaleDown: rules });
  let state = INITIAL_STATE;
  let current = 80;
  const seen: number[] = [];
  for (const at of [0, 20, 60, 120]) {
    const now = 1_000_000 + at * S;
    const r = decide(s, state, input({ now, current, inFlight: 100 }));
    state = recordScale(r.state, now, current, r.decision.desired);
    current = r.decision.desired;
    seen.push(current);
  }
  t.same(seen, [72, 72, 64, 57], 'one step per period toward 10');
});

t.test('scale-down stabilization: the highest recommendation of the last 300 s wins', async (t) => {
  const s = spec({ scaleDown: { ...HPA_DOWN, policies: [] } });
  let state = INITIAL_STATE;
  let current = 8;
  const plan: [number, number, number][] = [
    // [seconds, in flight, expected replicas]
    [0, 80, 8], [60, 20, 8], [120, 30, 8], [299, 10, 8], [300, 10, 4], [420, 10, 2],
  ];
  for (const [at, inFlight, expected] of plan) {
    const now = 1_000_000 + at * S;
    const r = decide(s, state, input({ now, current, inFlight }));
    t.equal(r.decision.desired, expected, `t=${at}s in flight ${inFlight} → ${expected}`);
    if (at === 60) t.equal(r.decision.cause, 'stabilized');
    state = recordScale(r.state, now, current, r.decision.desired);
    current = r.decision.desired;
  }
  t.ok(state.recommendations.every((r) => 1_000_000 + 420 * S - r.at < 300 * S), 'old recommendations are pruned');
});

t.test('panic: the short window at 2× the ready capacity scales up at once and blocks scale-down until it ends', async (t) => {
  const s = spec();
  // 1 ready replica, the last 6 s saw 100 in flight (10 replicas' worth); the 60 s mean is still 12.
  const first = decide(s, INITIAL_STATE, input({ current: 1, inFlight: 12, panicInFlight: 100 }));
  t.equal(first.decision.desired, 10, 'past the scale-up rate policy (which allows 5)');
  t.equal(first.decision.cause, 'panic');
  t.ok(first.decision.panic);
  // 30 s later the surge is gone from the short window, the stable window says 3: panic is over, and the
  // scale-down stabilization window keeps the surge's count as it keeps any peak.
  const later = decide(s, first.state, input({ now: 1_030_000, current: 10, inFlight: 25, panicInFlight: 5 }));
  t.notOk(later.decision.panic, 'panic is over');
  t.equal(later.state.panicSince, null);
  t.equal(later.decision.desired, 10, 'the surge is still in the scale-down stabilization window');
  t.equal(later.decision.cause, 'stabilized');
  const settled = decide(s, later.state, input({ now: 1_000_000 + 301 * S, current: 10, inFlight: 25, panicInFlight: 25 }));
  t.equal(settled.decision.desired, 3, 'after the stabilization window, the stable window decides (with 10 % headroom: 27.5 → 3)');
  // Below the threshold: 15 in flight on 1 ready replica is 1.5×, not a panic.
  const calm = decide(s, INITIAL_STATE, input({ current: 1, inFlight: 12, panicInFlight: 15 }));
  t.notOk(calm.decision.panic);
  t.equal(calm.decision.desired, 2, 'the stable window decides: ceil(12/10)');
  t.notOk(decide(spec({ panicThreshold: 0 }), INITIAL_STATE, input({ current: 1, inFlight: 12, panicInFlight: 100 })).decision.panic, 'threshold 0: no panic mode');
});

t.test('up fast, down slow: the short window may raise the count, only the stable window lowers it', async (t) => {
  const s = spec({ scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } });
  // A ramp: the last 6 s average 58 in flight, the minute 40. 1.45× the capacity of 4: not a panic, but more is needed.
  const up = once(s, input({ current: 4, inFlight: 40, panicInFlight: 58 })).decision;
  t.equal(up.desired, 6, 'the short window asks for 6');
  t.notOk(up.panic);
  t.match(up.reason, /^demand: 4 → 6 \(4 ready\); inFlight 40 vs 10\/replica → 6; last 6 s want 5.80/);
  // Load falling: the short window says 2, the stable one 4: nothing happens until the stable window agrees.
  t.equal(once(s, input({ current: 4, inFlight: 40, panicInFlight: 15 })).decision.desired, 4);
  // No tolerance on the way up: 43 in flight on 4 replicas of 10 needs a fifth.
  t.equal(once(s, input({ current: 4, inFlight: 40, panicInFlight: 43 })).decision.desired, 5);
});

t.test('never scales down because signals are missing', async (t) => {
  const s = spec({ targets: { inFlight: 10, cpuCores: 0.5 }, scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } });
  const missing = once(s, input({ current: 6, inFlight: 10, resources: null })).decision;
  t.equal(missing.desired, 6, 'CPU unknown: stays at 6 although in-flight asks for 1');
  t.equal(missing.cause, 'missing-signals');
  t.match(missing.reason, /cpuCores missing/);
  t.equal(once(s, input({ current: 6, inFlight: 100, resources: null })).decision.desired, 10, 'scale-up still happens');
  const partial = once(spec({ scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } }), input({ current: 6, inFlight: 10, recordingMs: 20 * S })).decision;
  t.equal(partial.desired, 6, 'a stable window not yet full after start-up never scales down');
  t.match(partial.reason, /not yet full/);
});

t.test('bounds, floors and schedules', async (t) => {
  const max = once(spec({ max: 8, scaleUp: NO_LIMIT }), input({ current: 4, inFlight: 500 })).decision;
  t.equal(max.desired, 8);
  t.equal(max.cause, 'max');
  const min = once(spec({ min: 3 }), input({ current: 1, inFlight: 0 })).decision;
  t.equal(min.desired, 3, 'below min: straight to min, whatever the rate policy');
  t.equal(min.cause, 'min');
  const sched = once(spec(), input({ current: 2, inFlight: 5, scheduleFloor: 6, schedule: '#0 (0 8 * * 1-5)' })).decision;
  t.equal(sched.desired, 6, 'a schedule raises the floor at once');
  t.equal(sched.cause, 'schedule');
  t.match(sched.reason, /schedule #0 \(0 8 \* \* 1-5\) floor 6/);
  t.equal(once(spec(), input({ current: 6, inFlight: 80, scheduleFloor: 6 })).decision.desired, 8, 'demand scales above the floor');
  t.equal(once(spec({ max: 4 }), input({ current: 2, scheduleFloor: 6 })).decision.desired, 4, 'a floor never passes max');
  t.equal(once(spec({ max: 5 }), input({ current: 9, inFlight: 90 })).decision.desired, 5, 'above max (max lowered by a reload): down to max');
});

t.test('scale from zero and back to zero', async (t) => {
  const s = spec({ min: 0 });
  const first = once(s, input({ current: 0, ready: 0, waiting: 1, inFlight: 0.2, panicInFlight: 1, idleMs: 0 })).decision;
  t.equal(first.desired, 1, 'a held request asks for one instance at once');
  t.ok(['scale-from-zero', 'panic'].includes(first.cause), first.cause);
  t.equal(once(s, input({ current: 0, ready: 0, waiting: 25, inFlight: 25, panicInFlight: 25 })).decision.desired, 3, 'held requests count as demand');
  t.equal(once(s, input({ current: 0, ready: 0, inFlight: 0 })).decision.desired, 0, 'no demand, nothing waiting: stays at zero');
  const idle = once(s, input({ current: 2, inFlight: 0, idleMs: 300 * S })).decision;
  t.equal(idle.desired, 0, 'idle for idleToZeroMs: to zero at once');
  t.equal(idle.cause, 'idle-to-zero');
  t.equal(once(s, input({ current: 2, inFlight: 0, idleMs: 299 * S })).decision.desired, 1, 'not idle long enough: one instance stays');
  const s2 = spec({ min: 0, scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } });
  t.equal(once(s2, input({ current: 2, inFlight: 0, idleMs: 100 * S })).decision.desired, 1, 'recent traffic keeps one instance');
  t.equal(once(s2, input({ current: 2, inFlight: 0, idleMs: 400 * S, scheduleFloor: 2 })).decision.desired, 2, 'an open schedule keeps its floor');
  t.equal(once(spec({ min: 1 }), input({ current: 1, inFlight: 0, idleMs: 1e9 })).decision.desired, 1, 'min 1 never goes to zero');
});

t.test('latency and request-rate targets', async (t) => {
  const s = spec({ targets: { latency: { percentile: 95, ms: 200 } }, scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } });
  t.equal(once(s, input({ current: 4, stable: win({ latencyP95Ms: 400, requestsPerSecond: 100 }), panic: win({ latencyP95Ms: 400, completed: 60, requests: 60, requestsPerSecond: 100, windowMs: 6 * S, spanMs: 6 * S }) })).decision.desired, 8, 'p95 at twice the target, no fit yet: twice the replicas');
  t.equal(once(s, input({ current: 4, stable: win({ latencyP95Ms: 400, completed: 5 }) })).decision.desired, 4, 'five requests are too few to judge latency');
  t.equal(once(s, input({ current: 4, ready: 2, stable: win({ latencyP95Ms: 300, completed: 500 }) })).decision.desired, 4, 'latency of 2 ready replicas: 3 needed, 4 already asked for');
  t.equal(once(s, input({ current: 4, stable: win({ latencyP95Ms: null, requests: 0, completed: 0 }) })).decision.desired, 1, 'no traffic at all: down to min');
  const rps = spec({ targets: { rps: 50 } });
  t.equal(once(rps, input({ current: 2, stable: win({ requestsPerSecond: 260 }) })).decision.desired, 6);
});

t.test('every decision says why, with its numbers', async (t) => {
  const d = once(spec(), input({ current: 3, inFlight: 42 })).decision;
  t.match(d.reason, /^demand: 3 → 5 \(3 ready\); inFlight 42 vs 10\/replica → 5/);
  t.equal(d.recommended, 5);
});

t.test('a backlog is sized in: arrivals − completions of the stable window drain within 10 s on top of the arrivals', async (t) => {
  // 4 replicas of 100 rps each see 400 rps; 3000 requests came in the last minute and did not finish.
  const s = spec({ targets: { rps: 100 } });
  const d = once(s, input({
    current: 4, stable: win({ requests: 24_000, completed: 21_000, requestsPerSecond: 400 }),
    panic: win({ requests: 2400, completed: 2400, requestsPerSecond: 400, windowMs: 6 * S, spanMs: 6 * S }),
  })).decision;
  t.equal(d.desired, 7, '400 rps + 3000 / 10 s = 700 rps → 7');
  t.match(d.reason, /backlog 3000/);
});

t.test('no tolerance on the way up: 5 % over the target asks for the replica', async (t) => {
  const d = once(spec({ targets: { rps: 100 } }), input({ current: 10, stable: win({ requestsPerSecond: 1050 }), panic: win({ requestsPerSecond: 1050, windowMs: 6 * S, spanMs: 6 * S }) })).decision;
  t.equal(d.desired, 11);
  t.equal(d.cause, 'demand');
});

t.test('an inFlight target settles on processor-sharing replicas: no overshoot on a step, no cycling under noise', async (t) => {
  // Replicas that serve 200 rps each, 15 ms on an idle one, latency ÷ (1 − ρ): 7 in flight per replica is 140 rps.
  const inFlightOf = (rps: number, n: number) => { const x = rps / n; return (n * x * 0.015) / (1 - Math.min(0.95, x / 200)); };
  const windowAt = (rps: number, n: number, ms: number) => win({ requests: rps * ms / S, completed: rps * ms / S, requestsPerSecond: rps, inFlightMean: inFlightOf(rps, n), windowMs: ms, spanMs: ms });
  const s = spec({ targets: { inFlight: 7 }, scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 60 * S } });
  let state = INITIAL_STATE;
  let current = 5;
  const seen: number[] = [];
  let changes = 0, last = 0;
  for (let k = 0; k < 1800; k++) {
    const now = 1_000_000 + k * S;
    const base = k < 300 ? 600 : 1200;   // a step at 5 min, then steady with noise in both windows
    const stableRps = base * (1 + 0.01 * Math.sin(k / 7)), shortRps = base * (1 + 0.04 * Math.sin(k * 1.3));
    const r = decide(s, state, input({ now, current, stable: windowAt(stableRps, current, 60 * S), panic: windowAt(shortRps, current, 6 * S), inFlightNow: inFlightOf(shortRps, current) }));
    // Counted from the step on: the first minutes at 600 rps are how the fit learns the replicas' response.
    const dir = k >= 300 ? Math.sign(r.decision.desired - current) : 0;
    if (dir !== 0 && last !== 0 && dir !== last) changes++;
    if (dir !== 0) last = dir;
    state = recordScale(r.state, now, current, r.decision.desired);
    current = r.decision.desired;
    seen.push(current);
  }
  t.ok(Math.max(...seen.slice(300)) <= 10, `the step does not overshoot the 9 needed by more than one (peak ${Math.max(...seen.slice(300))})`);
  t.equal(changes, 0, `no direction change (${seen.filter((n, i) => i === 0 || n !== seen[i - 1]).join(' → ')})`);
  t.equal(current, 9, 'settles at ceil(1200 / 140) = 9');
});

t.test('scale-down after a surge waits for the stabilization window only, not for a further panic hold', async (t) => {
  const s = spec({ scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 20 * S } });
  const first = decide(s, INITIAL_STATE, input({ current: 1, inFlight: 12, panicInFlight: 100 }));
  t.equal(first.decision.desired, 10);
  const later = decide(s, first.state, input({ now: 1_030_000, current: 10, inFlight: 25, panicInFlight: 5 }));
  t.equal(later.decision.desired, 3, '30 s after, past the 20 s window: down to the need with headroom (27.5 → 3)');
});

t.test('idle to zero after idleToZeroMs, while the stable window still shows the last requests', async (t) => {
  const s = spec({ min: 0, idleToZeroMs: 5 * S, scaleDown: { ...HPA_DOWN, stabilizationWindowMs: 0 } });
  const d = once(s, input({ current: 1, inFlight: 0.5, panicInFlight: 0, idleMs: 5 * S, stable: win({ requests: 30, completed: 30, inFlightMean: 0.5, requestsPerSecond: 0.5 }) })).decision;
  t.equal(d.desired, 0);
  t.equal(d.cause, 'idle-to-zero');
});

t.test('a clear step gets its instances in the evaluation that first sees it', async (t) => {
  // 2 in flight for a minute, then 12 for the last second on 1 replica of 5: the means have barely moved.
  const s = spec({ targets: { inFlight: 5 } });
  const d = once(s, input({
    current: 1, inFlightNow: 12,
    stable: win({ requests: 1300, completed: 1290, requestsPerSecond: 21.7, inFlightMean: 2.17 }),
    panic: win({ requests: 220, completed: 210, requestsPerSecond: 36.7, inFlightMean: 3.67, windowMs: 6 * S, spanMs: 6 * S }),
  })).decision;
  t.ok(d.desired >= 2, `asks for more at once (${d.desired})`);
  t.equal(d.desired, 3, '12 in flight ÷ 5 → 3');
});
