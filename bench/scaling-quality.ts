/**
 * Scaling quality: replays traffic traces (bench/scaling-model.ts: step, ramp, spike, diurnal, steady, ±10 % noise)
 * on a queueing model of replicas, through Gantry's scale policy with the defaults a user gets (one per target kind:
 * rps, inFlight, latency) and through two references written independently of it (bench/scaling-references.ts:
 * HPA-default and KPA-like), for cold starts of 10, 20 and 60 s. It prints, per target kind and cold start, Gantry's
 * seconds over the SLO and replica-seconds as ratios to HPA-default's (summed over the traces) and its direction
 * changes under steady load; the goal is ≤ 15 %, ≤ 75 % and 0. Then, per trace, every policy's seconds over the SLO
 * and replica-seconds as a share of HPA-default's on that trace, with the oracle's: which traces carry the sums.
 *
 *   npm run bench:scaling                  (markdown on stdout; exit 1 if a goal is missed)
 *   DETAIL=1 node dist/bench/scaling-quality.js   (also every trace's row)
 *   TRACE=steady,rps,10 node dist/bench/scaling-quality.js   (only this: one trace, target kind and cold start, per
 *     second: the rate, the replicas the oracle at the target has, Gantry's replicas and ready ones, p95; and the sums)
 *
 * Gantry's policy runs through its compiled code (decide(), recordScale()) with the ScalingConfig that parseRoutes
 * builds from a `scaling:` block naming only the scaler, `max: 100` and the target, every evaluation (intervalMs),
 * fed with what the gateway records: arrivals, completions, the time-weighted mean and the gauge of requests in
 * flight, latency percentiles of the finished requests.
 */
import { writeSync } from 'node:fs';
import { parseRoutes } from '../gateway/config/load-routes-file.js';
import type { ScalingConfig } from '../gateway/config/scaling-config.js';
import type { WindowSignals } from '../gateway/plugin-api/scaler.js';
import { decide, INITIAL_STATE, recordScale, type PolicyState } from '../gateway/scaling/scale-policy.js';
import { createBuiltinRegistry } from '../plugins/index.js';
import { latencyQuantile, ReplicaModel, sloUtilization, traces, type ModelParams, type Second, type Trace } from './scaling-model.js';
import { hpaDefault, kpaLike, type BenchPolicy } from './scaling-references.js';

/** 200 rps per replica, 15 ms on an idle one: 70 % utilization is 140 rps, 50 ms mean, 7 in flight, p95 150 ms. */
const MODEL: Omit<ModelParams, 'coldStartS'> = { capacityRps: 200, serviceMs: 15, sloMs: 250 };
const COLD_STARTS_S = [10, 20, 60];
const TARGET_UTILIZATION = 0.7;
const SLO_UTILIZATION = sloUtilization(MODEL);
const WARMUP_S = 600;
/** Every policy's max-scale (the same `max: 100` in Gantry's config). */
const MAX = 100;
const KINDS: { kind: string; target: string }[] = [
  { kind: 'rps', target: 'rps: 140' },
  { kind: 'inFlight', target: 'inFlight: 7' },
  { kind: 'latency', target: 'latency: { percentile: 95, ms: 150 }' },
];

/** The config a user gets for this target: every other field from the schema's defaults. */
function userConfig(target: string): ScalingConfig {
  const yaml = `services:
  app:
    discovery: { type: scaler }
    scaling:
      scaler: { type: process, command: [node, app.js] }
      max: 100
      target: { ${target} }
routes:
  - match: { path: / }
    service: app
`;
  const scaling = parseRoutes(yaml, 'bench.yaml', createBuiltinRegistry()).services.get('app')?.scaling;
  if (!scaling) throw new Error('no scaling block');
  return scaling;
}

function windowOf(history: readonly Second[], windowMs: number, withLatency: boolean): WindowSignals {
  const slice = history.slice(-Math.ceil(windowMs / 1000));
  const n = Math.max(1, slice.length);
  let arrivals = 0, completed = 0, inFlight = 0, peak = 0;
  for (const s of slice) { arrivals += s.arrivals; completed += s.completed; inFlight += s.inFlight; peak = Math.max(peak, s.inFlightNow); }
  return {
    spanMs: n * 1000, windowMs, requests: arrivals, completed, requestsPerSecond: arrivals / n, inFlightMean: inFlight / n, inFlightPeak: peak,
    latencyP50Ms: withLatency ? latencyQuantile(slice, 0.5) : null,
    latencyP95Ms: withLatency ? latencyQuantile(slice, 0.95) : null,
    latencyP99Ms: withLatency ? latencyQuantile(slice, 0.99) : null,
    errorRatio: 0, waitingMean: 0, waitingPeak: 0,
  };
}

function gantry(kind: string, config: ScalingConfig): BenchPolicy {
  let state: PolicyState = INITIAL_STATE;
  const everyS = Math.max(1, Math.round(config.intervalMs / 1000));
  const withLatency = config.policy.targets.latency !== undefined;
  return {
    name: `Gantry (${kind})`,
    decide(t, history, current, ready) {
      if (t % everyS !== 0) return null;
      const r = decide(config.policy, state, {
        now: t * 1000, current, ready,
        stable: windowOf(history, config.policy.stableWindowMs, withLatency), panic: windowOf(history, config.panicWindowMs, withLatency),
        inFlight: history[history.length - 1]?.inFlightNow ?? 0, waiting: 0, idleMs: 0, recordingMs: history.length * 1000, resources: null, scheduleFloor: 0,
      });
      state = r.state;
      return r.decision.desired;
    },
    record(t, from, to) { state = recordScale(state, t * 1000, from, to); },
  };
}

/**
 * Each second exactly the replicas that second's rate needs at `utilization`, ready at once. At the target it is the
 * bound no policy aiming at the same target beats; at the SLO's utilization (82 %), the least any policy can pay
 * without a second over the SLO, whatever it aims at.
 */
function oracle(trace: Trace, name: string, utilization: number): BenchPolicy {
  const perReplica = MODEL.capacityRps * utilization;
  return {
    name,
    decide(t) { return Math.max(1, Math.ceil((trace.rps[t - WARMUP_S + 1] ?? trace.rps[0]!) / perReplica)); },
    record() {},
  };
}

interface Result { sloSeconds: number; replicaSeconds: number; scaleEvents: number; directionChanges: number; peak: number }

function run(trace: Trace, policy: BenchPolicy, coldStartS: number, onSecond?: (t: number, s: Second, replicas: number) => void): Result {
  // Start in steady state: the first rate for WARMUP_S, at the replicas that rate needs; only the trace is measured.
  const initial = Math.max(1, Math.ceil(trace.rps[0]! / (MODEL.capacityRps * TARGET_UTILIZATION)));
  const model = new ReplicaModel({ ...MODEL, coldStartS }, initial);
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
    if (measuring) {
      onSecond?.(t - WARMUP_S, second, model.replicas);
      if (second.p95Ms > MODEL.sloMs) result.sloSeconds++;
      result.replicaSeconds += model.replicas;
      result.peak = Math.max(result.peak, model.replicas);
    }
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
  }
  return result;
}

const traceOnly = process.env.TRACE?.split(',');
if (traceOnly) {
  // Where the replica-seconds go: each second, what the oracle at the target has beside what Gantry has.
  const [name, kind, cold] = traceOnly;
  const trace = traces().find((x) => x.name === name);
  const target = KINDS.find((k) => k.kind === kind)?.target;
  if (!trace || !target) throw new Error('TRACE=<trace>,<rps|inFlight|latency>,<cold start s>');
  let need = 0;
  const out = ['t\trps\toracle\treplicas\tready\tp95 ms'];
  const r = run(trace, gantry(kind as string, userConfig(target)), Number(cold), (t, s, replicas) => {
    const n = Math.max(1, Math.ceil(s.arrivals / (MODEL.capacityRps * TARGET_UTILIZATION)));
    need += n;
    out.push(`${t}\t${s.arrivals.toFixed(0)}\t${n}\t${replicas}\t${s.ready}\t${s.p95Ms.toFixed(0)}`);
  });
  // Written synchronously: the process exits right after, and a pipe would lose an asynchronous write's tail.
  writeSync(1, `${out.join('\n')}\n# ${name}, ${kind}, ${cold} s cold start: ${r.replicaSeconds} replica-s (oracle at the target ${need}), ${r.sloSeconds} s over the SLO\n`);
  process.exit(0);
}

const pct = (a: number, b: number) => (b === 0 ? (a === 0 ? '100 %' : '∞') : `${Math.round((100 * a) / b)} %`);
const detail = process.env.DETAIL === '1';
const all = traces();
const summary: string[] = [
  '| target | cold start | SLO-violation s vs HPA-default | replica-s vs HPA-default | direction changes, steady | KPA-like: SLO-s, replica-s vs HPA | oracle at the target: replica-s vs HPA | oracle at the SLO |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
];
// Per trace, each policy's seconds over the SLO and replica-seconds ÷ HPA-default's: where the sums come from.
const perTrace: string[] = [
  `| cold start | trace | HPA-default: s over SLO, replica-s | oracle at the target | oracle at the SLO | ${KINDS.map((k) => `Gantry ${k.kind}`).join(' | ')} |`,
  `|---:|---|---:|---:|---:|${KINDS.map(() => '---:').join('|')}|`,
];
const rows: string[] = ['| cold start | trace | policy | s over SLO | replica-s | vs HPA | scale events | direction changes | peak |', '|---:|---|---|---:|---:|---:|---:|---:|---:|'];
const goals: string[] = [];
let ok = true;
const configs = KINDS.map(({ kind, target }) => ({ kind, config: userConfig(target) }));
for (const coldStartS of COLD_STARTS_S) {
  const sums = new Map<string, { slo: number; replicas: number; steadyChanges: number }>();
  for (const trace of all) {
    const policies = [hpaDefault(TARGET_UTILIZATION, MAX), kpaLike(7, MAX), oracle(trace, 'oracle', TARGET_UTILIZATION), oracle(trace, 'SLO oracle', SLO_UTILIZATION), ...configs.map(({ kind, config }) => gantry(kind, config))];
    const results = new Map<string, Result>();
    for (const p of policies) {
      const r = run(trace, p, coldStartS);
      results.set(p.name, r);
      const sum = sums.get(p.name) ?? { slo: 0, replicas: 0, steadyChanges: 0 };
      sum.slo += r.sloSeconds;
      sum.replicas += r.replicaSeconds;
      if (trace.name === 'steady') sum.steadyChanges = r.directionChanges;
      sums.set(p.name, sum);
      if (detail) rows.push(`| ${coldStartS} s | ${trace.name} | ${p.name} | ${r.sloSeconds} | ${r.replicaSeconds} | | ${r.scaleEvents} | ${r.directionChanges} | ${r.peak} |`);
    }
    const h = results.get('HPA-default')!;
    const vs = (name: string) => { const r = results.get(name)!; return `${r.sloSeconds} s, ${pct(r.replicaSeconds, h.replicaSeconds)}`; };
    perTrace.push(`| ${coldStartS} s | ${trace.name} | ${h.sloSeconds} s, ${h.replicaSeconds} | ${pct(results.get('oracle')!.replicaSeconds, h.replicaSeconds)} | ${pct(results.get('SLO oracle')!.replicaSeconds, h.replicaSeconds)} | ${configs.map(({ kind }) => vs(`Gantry (${kind})`)).join(' | ')} |`);
  }
  const hpa = sums.get('HPA-default')!;
  const kpa = sums.get('KPA-like')!;
  const best = sums.get('oracle')!;
  const sloBest = sums.get('SLO oracle')!;
  for (const { kind } of configs) {
    const g = sums.get(`Gantry (${kind})`)!;
    const sloOk = g.slo <= 0.15 * hpa.slo, costOk = g.replicas <= 0.75 * hpa.replicas, steadyOk = g.steadyChanges === 0;
    if (!(sloOk && costOk && steadyOk)) ok = false;
    summary.push(`| ${kind} | ${coldStartS} s | ${pct(g.slo, hpa.slo)} (${g.slo} vs ${hpa.slo} s) | ${pct(g.replicas, hpa.replicas)} | ${g.steadyChanges} | ${pct(kpa.slo, hpa.slo)}, ${pct(kpa.replicas, hpa.replicas)} | ${pct(best.replicas, hpa.replicas)} | ${pct(sloBest.replicas, hpa.replicas)} |`);
    if (!(sloOk && costOk && steadyOk)) goals.push(`- ${kind}, ${coldStartS} s cold start: ${[sloOk ? '' : 'SLO', costOk ? '' : 'cost', steadyOk ? '' : 'steady'].filter(Boolean).join(', ')} MISSED`);
  }
}
const head = `Model: ${MODEL.capacityRps} rps per ready replica, ${MODEL.serviceMs} ms on an idle one (processor sharing, latency ÷ (1 − ρ)), a backlog while overloaded or cold-starting; SLO p95 ≤ ${MODEL.sloMs} ms (met up to ${(100 * SLO_UTILIZATION).toFixed(0)} % utilization); targets at 70 % utilization (rps 140, inFlight 7, p95 150 ms; HPA 70 % CPU; KPA 7 in flight); ${WARMUP_S} s warm-up not counted; sums over ${all.map((t) => t.name).join(', ')}.`;
process.stdout.write(`${head}\n\n${summary.join('\n')}\n\nPer trace (replica-seconds as a share of HPA-default's on the same trace):\n\n${perTrace.join('\n')}\n${detail ? `\n${rows.join('\n')}\n` : ''}\nGoals (≤ 15 % of HPA-default's SLO seconds at ≤ 75 % of its replica-seconds, 0 direction changes under steady load): ${ok ? 'all met' : `\n${goals.join('\n')}`}\n`);
process.exitCode = ok ? 0 : 1;
