/**
 * Scaling quality: replays traffic traces through Gantry's scale policy and through an HPA-default policy against
 * the same queueing model (bench/scaling-model.ts), and reports for each: seconds over the latency SLO,
 * replica-seconds, scale events and direction changes.
 *
 *   npm run bench:scaling                    (markdown table on stdout; exit 1 if a goal is missed)
 *   COLD_START_S=60 node dist/bench/scaling-quality.js   (another cold start)
 *
 * Gantry: the policy from gateway/scaling/scale-policy.ts with routes.yaml's defaults (1 s interval, 60 s stable and
 * 6 s panic windows, panic at 2×, 10 % tolerance, 300 s scale-down stabilization, HPA's rate policies), fed with what
 * the gateway sees every second: the arrival rate (target 70 rps per replica, 70 % of its capacity) or, in the
 * second configuration, requests in flight (target 4.67 per replica, the same 70 % utilization by Little's law).
 *
 * HPA-default: the same policy code with Kubernetes' defaults and no panic mode: evaluated every 15 s on a CPU-like
 * signal that saturates at 100 % and lags (metrics-server: a sample every 15 s, each the mean utilization of the
 * ready replicas over the previous 30 s), target 70 % utilization.
 */
import type { PolicySpec, ScalingTargets } from '../gateway/config/scaling-config.js';
import type { WindowSignals } from '../gateway/plugin-api/scaler.js';
import { decide, INITIAL_STATE, recordScale, type PolicyState } from '../gateway/scaling/scale-policy.js';
import { ReplicaModel, traces, type ModelParams, type Second, type Trace } from './scaling-model.js';

const MODEL: ModelParams = { capacityRps: 100, serviceMs: 20, coldStartS: Number(process.env.COLD_START_S ?? 20), sloMs: 100 };
const TARGET_UTILIZATION = 0.7;
const WARMUP_S = 600;

const HPA_RULES = {
  scaleUp: { stabilizationWindowMs: 0, policies: [{ type: 'percent', value: 100, periodMs: 15_000 }, { type: 'replicas', value: 4, periodMs: 15_000 }], selectPolicy: 'max' },
  scaleDown: { stabilizationWindowMs: 300_000, policies: [{ type: 'percent', value: 100, periodMs: 15_000 }], selectPolicy: 'max' },
} as const;

function spec(targets: ScalingTargets, panicThreshold: number): PolicySpec {
  return {
    min: 1, max: 200, targets, tolerance: 0.1, stableWindowMs: 60_000, panicThreshold, idleToZeroMs: 300_000, minLatencySamples: 10,
    scaleUp: HPA_RULES.scaleUp, scaleDown: HPA_RULES.scaleDown,
  } as PolicySpec;
}

function window(history: readonly Second[], seconds: number): WindowSignals {
  const slice = history.slice(-seconds);
  const n = Math.max(1, slice.length);
  const arrivals = slice.reduce((a, s) => a + s.arrivals, 0);
  return {
    spanMs: n * 1000, windowMs: seconds * 1000, requests: arrivals, completed: arrivals, requestsPerSecond: arrivals / n,
    inFlightMean: slice.reduce((a, s) => a + s.inFlight, 0) / n, inFlightPeak: Math.max(0, ...slice.map((s) => s.inFlight)),
    latencyP50Ms: null, latencyP95Ms: null, latencyP99Ms: null, errorRatio: 0, waitingMean: 0, waitingPeak: 0,
  };
}

interface Policy {
  readonly name: string;
  /** Called every second with the history so far; returns the replica count to set, or null for no evaluation. */
  decide(t: number, history: readonly Second[], current: number, ready: number): number | null;
  record(t: number, from: number, to: number): void;
}

function gantry(name: string, targets: ScalingTargets): Policy {
  const s = spec(targets, 2);
  let state: PolicyState = INITIAL_STATE;
  return {
    name,
    decide(t, history, current, ready) {
      const r = decide(s, state, {
        now: t * 1000, current, ready, stable: window(history, 60), panic: window(history, 6), waiting: 0, idleMs: 0,
        recordingMs: history.length * 1000, resources: null, scheduleFloor: 0,
      });
      state = r.state;
      return r.decision.desired;
    },
    record(t, from, to) { state = recordScale(state, t * 1000, from, to); },
  };
}

function hpaDefault(): Policy {
  const s = spec({ cpuCores: TARGET_UTILIZATION }, 0);
  let state: PolicyState = INITIAL_STATE;
  let sample: number | null = null;
  return {
    name: 'HPA-default',
    decide(t, history, current, ready) {
      // metrics-server: every 15 s, the mean utilization over the previous 30 s (saturates at 100 %).
      if (t % 15 === 0) sample = history.slice(-30).reduce((a, x) => a + x.utilization, 0) / Math.max(1, Math.min(30, history.length));
      if (t % 15 !== 7 || sample === null) return null;   // the HPA controller syncs every 15 s, off the scrape
      const r = decide(s, state, {
        now: t * 1000, current, ready, stable: window(history, 60), panic: window(history, 6), waiting: 0, idleMs: 0,
        recordingMs: history.length * 1000, resources: { instances: ready, cpuCoresMean: sample, memoryBytesMean: null }, scheduleFloor: 0,
      });
      state = r.state;
      return r.decision.desired;
    },
    record(t, from, to) { state = recordScale(state, t * 1000, from, to); },
  };
}

interface Result { sloSeconds: number; replicaSeconds: number; scaleEvents: number; directionChanges: number; peak: number }

function run(trace: Trace, policy: Policy): Result {
  // Start in steady state: the first rate for WARMUP_S, at the replicas that rate needs; only the trace is measured.
  const initial = Math.max(1, Math.ceil(trace.rps[0]! / (MODEL.capacityRps * TARGET_UTILIZATION)));
  const model = new ReplicaModel(MODEL, initial);
  const history: Second[] = [];
  const result: Result = { sloSeconds: 0, replicaSeconds: 0, scaleEvents: 0, directionChanges: 0, peak: 0 };
  let lastDirection = 0;
  const total = WARMUP_S + trace.rps.length;
  for (let t = 0; t < total; t++) {
    const measuring = t >= WARMUP_S;
    const arrivals = measuring ? trace.rps[t - WARMUP_S]! : trace.rps[0]!;
    const second = model.step(t, arrivals);
    history.push(second);
    if (history.length > 400) history.shift();
    const desired = policy.decide(t, history, model.replicas, model.ready);
    if (desired !== null && desired !== model.replicas) {
      const from = model.replicas;
      model.scaleTo(desired, t);
      policy.record(t, from, desired);
      if (measuring) {
        const direction = Math.sign(desired - from);
        result.scaleEvents++;
        if (lastDirection !== 0 && direction !== lastDirection) result.directionChanges++;
        lastDirection = direction;
      }
    }
    if (measuring) {
      if (second.latencyMs > MODEL.sloMs) result.sloSeconds++;
      result.replicaSeconds += model.replicas;
      result.peak = Math.max(result.peak, model.replicas);
    }
  }
  return result;
}

const rows: string[] = [];
let ok = true;
rows.push(`Model: ${MODEL.capacityRps} rps per ready replica, ${MODEL.serviceMs} ms service time, ${MODEL.coldStartS} s cold start, SLO ${MODEL.sloMs} ms (met up to 80 % utilization); targets 70 % utilization; ${WARMUP_S} s warm-up not counted.`);
rows.push('');
rows.push('| trace | policy | s over SLO | replica-s | vs HPA | scale events | direction changes | peak replicas |');
rows.push('|---|---|---:|---:|---:|---:|---:|---:|');
const goals: string[] = [];
for (const trace of traces()) {
  const hpa = run(trace, hpaDefault());
  const policies = [gantry('Gantry (rps target)', { rps: MODEL.capacityRps * TARGET_UTILIZATION }), gantry('Gantry (in-flight target)', { inFlight: 4.67 })];
  const results = policies.map((p) => ({ name: p.name, r: run(trace, p) }));
  for (const { name, r } of [...results, { name: 'HPA-default', r: hpa }]) {
    rows.push(`| ${trace.name} | ${name} | ${r.sloSeconds} | ${r.replicaSeconds} | ${(100 * r.replicaSeconds / hpa.replicaSeconds).toFixed(0)} % | ${r.scaleEvents} | ${r.directionChanges} | ${r.peak} |`);
  }
  // The goals are checked for the headline configuration (rps target); the in-flight one is reported for comparison
  // (docs/scaling.md explains why a concurrency target is unstable on a server whose latency grows with load).
  for (const { name, r } of results.slice(0, 1)) {
    const sloOk = hpa.sloSeconds === 0 ? r.sloSeconds === 0 : r.sloSeconds < hpa.sloSeconds / 2;
    const costOk = r.replicaSeconds <= 1.1 * hpa.replicaSeconds;
    const steadyOk = trace.name !== 'steady' || r.directionChanges === 0;
    if (!(sloOk && costOk && steadyOk)) ok = false;
    goals.push(`- ${trace.name}, ${name}: SLO ${sloOk ? 'met' : 'MISSED'} (${r.sloSeconds} vs ${hpa.sloSeconds} s), cost ${costOk ? 'met' : 'MISSED'} (${(100 * r.replicaSeconds / hpa.replicaSeconds).toFixed(0)} %)${trace.name === 'steady' ? `, steady ${steadyOk ? 'met' : 'MISSED'} (${r.directionChanges} direction changes)` : ''}`);
  }
}
process.stdout.write(`${rows.join('\n')}\n\nGoals (under half of HPA-default's SLO seconds at no more than 110 % of its replica-seconds; no direction change under steady load):\n${goals.join('\n')}\n`);
process.exitCode = ok ? 0 : 1;
