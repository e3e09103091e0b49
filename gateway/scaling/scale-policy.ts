import type { PolicySpec, ScalingRules } from '../config/scaling-config.js';
import type { ResourceUsage, WindowSignals } from '../plugin-api/scaler.js';
import { addRate, projectedRise, rateNoise, type RateTrend } from './rate-trend.js';

/**
 * The scaling decision as a pure function: signals and the previous state in, a replica count, a reason and the next
 * state out. No I/O, no clock of its own, so every rule is table-tested (test/unit/scale-policy.test.ts).
 *
 * Demand is a request rate: every demand target (rps, inFlight, latency) becomes the rate one replica takes at the
 * target, so the count is arrivals ÷ that rate, linear in replicas whatever the target (inFlight and latency through
 * a fit of how latency grows with the rate per replica). Up as soon as the stable or the short window, with the
 * backlog to drain and the rise the rate's trend projects over a cold start, needs more (no tolerance; the short
 * window's own noise, measured around that trend, counts nothing); down only from the stable window and only to a
 * count that keeps that noise as headroom (between half the `tolerance` and all of it). Around that, Kubernetes' HPA (the highest recommendation of the scale-down stabilization
 * window, scale-up/-down rate policies, min/max) and Knative's panic mode (the short window at `panicThreshold` × the
 * ready capacity: all of it at once, past the rate policies). Schedules, held requests and idle-to-zero set the floor.
 */

export interface PolicyInput {
  /** Epoch ms. */
  readonly now: number;
  /** The orchestrator's replica count (including instances still starting). */
  readonly current: number;
  /** Endpoints ready for traffic. */
  readonly ready: number;
  readonly stable: WindowSignals;
  readonly panic: WindowSignals;
  /** Requests in flight right now (held ones included): a clear step shows here before any window mean moves. */
  readonly inFlight?: number;
  /** Requests held for a first endpoint right now. */
  readonly waiting: number;
  readonly idleMs: number;
  /** How long signals have been recorded: a stable window not yet full never justifies a scale-down. */
  readonly recordingMs: number;
  readonly resources: ResourceUsage | null;
  /** The floor of the open schedule (0 when none) and which one it is. */
  readonly scheduleFloor: number;
  readonly schedule?: string;
}

/** A weighted least-squares fit of 1/latency against the per-replica request rate, decaying with age. */
export interface LatencyFit {
  readonly at: number;
  readonly w: number;
  readonly x: number;
  readonly y: number;
  readonly xx: number;
  readonly xy: number;
}

export interface PolicyState {
  /** Unstabilized recommendations with their time, newest last (pruned to the longest stabilization window). */
  readonly recommendations: readonly { readonly at: number; readonly replicas: number }[];
  /** Scale changes carried out, signed (+2 = two added), for the rate policies (pruned to the longest period). */
  readonly events: readonly { readonly at: number; readonly change: number }[];
  /** Last time the short window demanded a panic; null when not panicking. */
  readonly panicSince: number | null;
  /** The highest count decided during this panic. */
  readonly panicMax: number;
  /** How mean latency (inFlight targets) and the latency percentile (latency targets) respond to the per-replica rate. */
  readonly fits: { readonly inFlight: LatencyFit | null; readonly latency: LatencyFit | null };
  /** Since when more replicas are asked for than are ready (null: all ready), and the last measured cold start. */
  readonly startingSince: number | null;
  readonly coldStartMs: number;
  /** The short window's request rate over the last minutes, as a line (gateway/scaling/rate-trend.ts). */
  readonly trend: RateTrend | null;
}

export const INITIAL_STATE: PolicyState = Object.freeze({
  recommendations: [], events: [], panicSince: null, panicMax: 0, fits: { inFlight: null, latency: null }, startingSince: null, coldStartMs: 0, trend: null,
});

export type MetricName = 'inFlight' | 'rps' | 'latency' | 'cpuCores' | 'memoryMiB';

export interface MetricRecommendation {
  readonly metric: MetricName;
  /** Observed: the total for inFlight/rps, the percentile for latency, the per-instance mean for resources. */
  readonly observed: number | null;
  readonly target: number;
  /** Replicas this metric asks for; null when it has no data (missing) or no say (too few latency samples). */
  readonly replicas: number | null;
  readonly missing: boolean;
  /** For demand targets: the request rate one replica takes at the target (rps as configured, the others measured). */
  readonly perReplicaRps?: number | null;
}

export type DecisionCause =
  | 'demand' | 'panic' | 'scale-from-zero' | 'idle-to-zero' | 'schedule' | 'min' | 'max' | 'steady'
  | 'within-tolerance' | 'stabilized' | 'rate-limited' | 'missing-signals';

export interface PolicyDecision {
  readonly at: number;
  readonly current: number;
  readonly ready: number;
  readonly desired: number;
  /** The rule that settled the count (a short word, fit for a metric label). */
  readonly cause: DecisionCause;
  /** The same for humans, with the numbers. */
  readonly reason: string;
  readonly panic: boolean;
  readonly metrics: readonly MetricRecommendation[];
  /** The recommendation before stabilization, rate limits and bounds. */
  readonly recommended: number;
  readonly minAllowed: number;
  readonly maxAllowed: number;
}

const EPSILON = 1e-9;
/** The backlog (requests that arrived and did not finish) is sized to drain within this many seconds. */
const DRAIN_S = 10;
/** A latency fit forgets with this time constant, so a new release or payload mix is learned within minutes. */
const FIT_DECAY_MS = 600_000;
/** A fit needs this much weight (about this many evaluations) before it says anything. */
const FIT_MIN_WEIGHT = 20;
/** Ridge: a slope is believed only as far as the per-replica rate varied by more than this share of its mean. */
const FIT_SPREAD = 0.01;
/** The utilization a fit may infer at most: the curve is steep beyond it and a few noisy points would dominate. */
const FIT_MAX_RHO = 0.95;
/**
 * The short window's rate counts upward only past this many standard deviations of its own noise (as measured around
 * the rate's trend): at 1200 rps ± 10 % a 6 s mean strays ±28 rps, enough to round 8.6 replicas' worth up to a 10th
 * now and then, which the headroom on the way down would then keep for good.
 */
const NOISE_Z = 2;

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1);
}

/** Replicas for a ratio observed/target of a per-instance value over `base` instances: no tolerance up, `tolerance` down. */
function byRatio(current: number, base: number, ratio: number, tolerance: number): number {
  const raw = base * ratio;
  if (current > 0 && raw <= current + EPSILON && raw >= current * (1 - tolerance) - EPSILON) return current;
  return Math.max(0, Math.ceil(raw - EPSILON));
}

function latencyOf(w: WindowSignals, percentile: 50 | 95 | 99): number | null {
  return percentile === 50 ? w.latencyP50Ms : percentile === 95 ? w.latencyP95Ms : w.latencyP99Ms;
}

/** Adds one point (x: requests per second per ready replica, y: 1 / latency in seconds) to a decaying fit. */
function addPoint(fit: LatencyFit | null, now: number, x: number, y: number): LatencyFit {
  const k = fit === null ? 0 : Math.exp(-Math.max(0, now - fit.at) / FIT_DECAY_MS);
  return {
    at: now, w: (fit?.w ?? 0) * k + 1, x: (fit?.x ?? 0) * k + x, y: (fit?.y ?? 0) * k + y,
    xx: (fit?.xx ?? 0) * k + x * x, xy: (fit?.xy ?? 0) * k + x * y,
  };
}

/**
 * The line 1/latency = a − b × rate per replica through the fit's points: the shape of a processor-sharing server,
 * latency = service time / (1 − utilization), with a = 1 / service time and b = a / capacity; a server with many
 * workers has b ≈ 0 (latency flat). Null until enough points, and while the rate per replica has varied by less
 * than FIT_SPREAD of its mean.
 */
function lineOf(fit: LatencyFit | null): { a: number; b: number } | null {
  if (fit === null || fit.w < FIT_MIN_WEIGHT) return null;
  const mx = fit.x / fit.w, my = fit.y / fit.w;
  const vx = fit.xx / fit.w - mx * mx, cxy = fit.xy / fit.w - mx * my;
  // A rate that did not vary says nothing of the slope: the ridge below would shrink it to ~0, which a latency
  // target reads as replicas that never slow down (9 → 1 at 97 % of the target with a steady rate).
  if (vx < (FIT_SPREAD * mx) ** 2) return null;
  let b = Math.max(0, -cxy / (vx + (FIT_SPREAD * mx) ** 2));
  let a = my + b * mx;
  if (!(a > 0) || !(mx > 0)) return null;
  if (b * mx > FIT_MAX_RHO * a) { b = (FIT_MAX_RHO * a) / mx; a = my + b * mx; }
  return { a, b };
}

/** What one target asks for, in replicas (fractional), over the stable and the short window. */
interface Demand {
  readonly metric: MetricName;
  readonly observed: number | null;
  readonly target: number;
  /** The request rate one replica can take at the target; null for resource targets. */
  readonly perReplicaRps: number | null;
  readonly stable: number | null;
  readonly short: number | null;
  readonly missing: boolean;
}

/**
 * Every demand target becomes a request rate one replica can take at the target, so demand is arrivals ÷ that rate:
 * linear in replicas whatever the target. `rps` is one already. `inFlight` goes through Little's law with latency as
 * measured, corrected by the fit of how latency grows with the rate (near saturation in flight grows as ρ/(1−ρ), not
 * in proportion, and the plain ratio overshoots both ways). `latency` solves the fit for the rate at the target
 * latency; until the fit knows the slope, replicas scale with latency / target.
 */
function demands(spec: PolicySpec, state: PolicyState, input: PolicyInput, aheadRps: number, noiseRps: number): Demand[] {
  const { targets: t } = spec;
  const { stable, panic, ready, current } = input;
  const base = Math.max(ready > 0 ? ready : current, 1);
  const shortRps = Math.max(0, panic.requestsPerSecond - noiseRps) + aheadRps;
  const rate = (metric: MetricName, observed: number | null, target: number, perReplicaRps: number | null): Demand => ({
    metric, observed, target, perReplicaRps, missing: false,
    stable: perReplicaRps === null ? null : perReplicaRps === Infinity ? 0 : stable.requestsPerSecond / perReplicaRps,
    short: perReplicaRps === null ? null : perReplicaRps === Infinity ? 0 : shortRps / perReplicaRps,
  });
  const out: Demand[] = [];
  if (t.inFlight !== undefined) {
    const line = lineOf(state.fits.inFlight);
    const target = t.inFlight;
    let perReplica: number | null = null;
    if (line !== null) perReplica = (target * line.a) / (1 + target * line.b);
    else if (stable.inFlightMean > 0 && stable.requestsPerSecond > 0) perReplica = (target * stable.requestsPerSecond) / stable.inFlightMean;
    else if (stable.requests === 0 && stable.inFlightMean === 0 && input.waiting === 0) perReplica = Infinity;   // no traffic: no demand
    // In flight but nothing arrived in the window (long requests): the plain ratio is all there is.
    const d = perReplica === null
      ? { metric: 'inFlight' as const, observed: stable.inFlightMean, target, perReplicaRps: null, missing: false, stable: stable.inFlightMean / target, short: Math.max(panic.inFlightMean, stable.inFlightMean) / target }
      : rate('inFlight', stable.inFlightMean, target, perReplica);
    // A clear step (in flight now at panic level of the ready capacity) is acted on at once, before the means move:
    // the count in flight read back as a rate through the same line (bounded by the capacity it implies).
    const gauge = input.inFlight ?? 0;
    let short = d.short;
    if (spec.panicThreshold > 0 && gauge >= spec.panicThreshold * target * base) {
      const a = line?.a ?? (stable.inFlightMean > 0 ? stable.requestsPerSecond / stable.inFlightMean : 0);
      const perReplicaNow = gauge / base;
      const rateNow = (base * perReplicaNow * a) / (1 + perReplicaNow * (line?.b ?? 0));
      const step = perReplica === null || perReplica === Infinity || a === 0 ? gauge / target : rateNow / perReplica;
      short = Math.max(short ?? 0, step);
    }
    out.push({ ...d, short });
  }
  if (t.rps !== undefined) out.push(rate('rps', stable.requestsPerSecond, t.rps, t.rps));
  if (t.latency !== undefined) {
    const target = t.latency.ms;
    const observed = latencyOf(stable, t.latency.percentile);
    if (observed === null || stable.completed < spec.minLatencySamples) {
      // Without traffic there is no latency to hold down: no say either way (demand targets decide).
      out.push({ metric: 'latency', observed, target, perReplicaRps: null, missing: false, stable: null, short: null });
    } else {
      const line = lineOf(state.fits.latency);
      const x = stable.requestsPerSecond / base;
      let perReplica = (x * target) / observed;
      // The fit may lower the count only while latency is within target: over it, its extrapolation is not trusted.
      if (line !== null && line.b > 0 && line.a > 1000 / target) {
        const fitted = (line.a - 1000 / target) / line.b;
        perReplica = observed > target ? Math.min(perReplica, fitted) : fitted;
      }
      // No arrival rate to divide (requests longer than the window): replicas in proportion to latency.
      const d = x > 0 ? rate('latency', observed, target, perReplica)
        : { metric: 'latency' as const, observed, target, perReplicaRps: null, missing: false, stable: (base * observed) / target, short: null };
      // Latency measured while instances are still starting says nothing about the full count: never down on it then.
      out.push(ready < current && (d.stable ?? 0) < current ? { ...d, stable: current } : d);
    }
  }
  const r = input.resources;
  if (t.cpuCores !== undefined) {
    const observed = r?.cpuCoresMean ?? null;
    const ok = observed !== null && r !== null && r.instances > 0;
    const need = ok ? (r.instances * observed) / t.cpuCores : null;
    out.push({ metric: 'cpuCores', observed, target: t.cpuCores, perReplicaRps: null, missing: !ok, stable: need, short: null });
  }
  if (t.memoryMiB !== undefined) {
    const observed = r?.memoryBytesMean ?? null;
    const ok = observed !== null && r !== null && r.instances > 0;
    const need = ok ? (r.instances * observed) / (t.memoryMiB * 1048576) : null;
    out.push({ metric: 'memoryMiB', observed, target: t.memoryMiB, perReplicaRps: null, missing: !ok, stable: need, short: null });
  }
  return out;
}

/**
 * Replicas one target asks for: up as soon as either window needs more than there are (no tolerance: holding until
 * the band is crossed lets noise push seconds past the SLO); down only to a count that leaves `headroom` (a share)
 * over the stable window's demand, so the next noisy short window does not ask for the replica back. Resource
 * targets keep HPA's rule with `tolerance`.
 */
function replicasFor(d: Demand, current: number, tolerance: number, headroom: number): number | null {
  if (d.stable === null) return null;
  const short = d.short ?? 0;
  const need = Math.max(0, Math.ceil(Math.max(d.stable, short) - EPSILON));
  if (need > current) return need;
  if (d.short === null) return byRatio(current, 1, d.stable, tolerance);   // resources: the HPA rule, downward band
  return Math.min(current, Math.max(0, Math.ceil(Math.max(d.stable * (1 + headroom), short) - EPSILON)));
}

/** Replicas changed in the last `periodMs` in one direction (sum of |change| of events with that sign). */
function changedWithin(events: PolicyState['events'], now: number, periodMs: number, sign: 1 | -1): number {
  let sum = 0;
  for (const e of events) if (now - e.at < periodMs && Math.sign(e.change) === sign) sum += Math.abs(e.change);
  return sum;
}

/** HPA's calculateScaleUpLimitWithScalingRules: the highest count the up-policies allow now (no policies: no limit). */
export function scaleUpLimit(current: number, events: PolicyState['events'], rules: ScalingRules, now: number): number {
  if (rules.selectPolicy === 'disabled') return current;
  if (rules.policies.length === 0) return Infinity;   // no policy: no rate limit
  let result = rules.selectPolicy === 'max' ? -Infinity : Infinity;
  for (const p of rules.policies) {
    const start = current - changedWithin(events, now, p.periodMs, 1) + changedWithin(events, now, p.periodMs, -1);
    // Rounded up, or a percent policy could never add a replica to a small service.
    const proposed = p.type === 'replicas' ? start + p.value : Math.ceil(start * (1 + p.value / 100) - EPSILON);
    result = rules.selectPolicy === 'max' ? Math.max(result, proposed) : Math.min(result, proposed);
  }
  return result;
}

/** HPA's calculateScaleDownLimitWithBehaviors: the lowest count the down-policies allow now. */
export function scaleDownLimit(current: number, events: PolicyState['events'], rules: ScalingRules, now: number): number {
  if (rules.selectPolicy === 'disabled') return current;
  if (rules.policies.length === 0) return 0;
  let result = rules.selectPolicy === 'max' ? Infinity : -Infinity;
  for (const p of rules.policies) {
    const start = current - changedWithin(events, now, p.periodMs, 1) + changedWithin(events, now, p.periodMs, -1);
    // Truncated, as HPA does: 10 % of 72 removes 8 (72 × 0.9 = 64.8 → 64).
    const proposed = p.type === 'replicas' ? start - p.value : Math.floor(start * (1 - p.value / 100) + EPSILON);
    result = rules.selectPolicy === 'max' ? Math.min(result, proposed) : Math.max(result, proposed);
  }
  return result;
}

function longestPeriod(spec: PolicySpec): number {
  let ms = 0;
  for (const p of [...spec.scaleUp.policies, ...spec.scaleDown.policies]) ms = Math.max(ms, p.periodMs);
  return ms;
}

function describeMetrics(metrics: readonly MetricRecommendation[]): string {
  return metrics.map((m) => {
    if (m.missing) return `${m.metric} missing`;
    if (m.replicas === null) return `${m.metric} no data`;
    const unit = m.metric === 'latency' ? ' ms' : m.metric === 'memoryMiB' ? ' B' : '';
    const rate = m.perReplicaRps !== undefined && m.perReplicaRps !== null && m.metric !== 'rps' && Number.isFinite(m.perReplicaRps) ? ` (${fmt(m.perReplicaRps)} rps/replica)` : '';
    return `${m.metric} ${fmt(m.observed ?? 0)}${unit} vs ${fmt(m.target)}${m.metric === 'memoryMiB' ? ' MiB' : unit}${m.metric === 'inFlight' || m.metric === 'rps' ? '/replica' : ''}${rate} → ${m.replicas}`;
  }).join(', ');
}

/** Records a carried-out change for the rate policies (call after the scaler succeeded). */
export function recordScale(state: PolicyState, at: number, from: number, to: number): PolicyState {
  if (from === to) return state;
  return { ...state, events: [...state.events, { at, change: to - from }] };
}

/** The fits after this evaluation: a point from the short window when it is settled (all ready, no backlog growing). */
function learn(spec: PolicySpec, state: PolicyState, input: PolicyInput): PolicyState['fits'] {
  const { panic: w, ready, current, now } = input;
  const t = spec.targets;
  let { inFlight, latency } = state.fits;
  const settled = ready > 0 && ready === current && w.requests > 0 && w.completed >= 0.97 * w.requests && w.completed >= spec.minLatencySamples;
  if (!settled) return state.fits;
  const x = w.requestsPerSecond / ready;
  if (t.inFlight !== undefined && w.inFlightMean > 0) inFlight = addPoint(inFlight, now, x, w.requestsPerSecond / w.inFlightMean);
  const p = t.latency === undefined ? null : latencyOf(w, t.latency.percentile);
  if (p !== null && p > 0) latency = addPoint(latency, now, x, 1000 / p);
  return { inFlight, latency };
}

/** One evaluation. Returns the decision and the state to pass to the next call. */
export function decide(spec: PolicySpec, state: PolicyState, input: PolicyInput): { decision: PolicyDecision; state: PolicyState } {
  const { now, current, ready } = input;
  const fits = learn(spec, state, input);
  // The backlog: what arrived in the stable window and has not finished (held requests included), to drain within
  // DRAIN_S on top of the arrivals. In steady state it is the noise of the in-flight count, a few requests.
  // Replicas still starting will drain it too: the horizon grows by the cold start last measured.
  const backlog = Math.max(0, input.stable.requests - input.stable.completed);
  // A rise under way (a ramp, the daily shape) is met before it arrives: the short window's rate as a line over the
  // last minutes, projected one cold start ahead (plus the window's own lag), only upward, damped by how well a line
  // fits. Steady noise fits no line and a step fits one poorly, so neither asks for much.
  const trend = addRate(state.trend ?? null, now, input.panic.requestsPerSecond);
  // The cold start last measured, or the one under way when it is longer (nothing measured yet: the first one).
  const coldMs = Math.max(state.coldStartMs, state.startingSince === null ? 0 : now - state.startingSince);
  const aheadS = coldMs / 1000 + input.panic.windowMs / 2000;
  const riseRps = projectedRise(trend, aheadS);
  // The short window's own noise, measured before this evaluation's point, counts nothing upward (less on a rise the
  // line explains, whose replicas a band would delay by band ÷ slope each). A step widens the measured noise within
  // seconds (its residuals around the line) and would then hold back the replicas its backlog needs, so the band is
  // capped at half the tolerance (5 % of the rate by default, above the 2σ of a 6 s window at ±10 % per second).
  // Down, the headroom kept is that noise (undamped: the next short window is as noisy on a slope), so it does not
  // ask for the replica back; `tolerance` until the noise is measured, never more, and never less than half of it
  // (with less, the 60 s window's own lag and noise cost bench:scaling's step a second over the SLO).
  const stableRps = input.stable.requestsPerSecond;
  const noise = rateNoise(state.trend ?? null);
  const noiseRps = noise === null ? 0 : Math.min(NOISE_Z * noise.sd * (1 - noise.explained), (spec.tolerance / 2) * stableRps);
  const headroom = noise === null || !(stableRps > 0) ? spec.tolerance : Math.min(spec.tolerance, Math.max(spec.tolerance / 2, (NOISE_Z * noise.sd) / stableRps));
  const all = demands(spec, { ...state, fits }, input, backlog / (DRAIN_S + state.coldStartMs / 1000) + riseRps, noiseRps);
  const metrics: MetricRecommendation[] = all.map((d) => ({
    metric: d.metric, observed: d.observed, target: d.target, perReplicaRps: d.perReplicaRps !== null && Number.isFinite(d.perReplicaRps) ? d.perReplicaRps : null, missing: d.missing,
    replicas: replicasFor(d, current, spec.tolerance, headroom),
  }));
  const missing = metrics.filter((m) => m.missing).map((m) => m.metric);
  const voting = metrics.filter((m) => m.replicas !== null);
  // No metric has a say (only a latency target, and too few requests to judge): idle if nothing came, else hold.
  let recommended = voting.length ? Math.max(...voting.map((m) => m.replicas as number))
    : input.stable.requests === 0 && input.stable.completed === 0 && input.waiting === 0 ? 0 : current;
  // Never down because a signal is missing, nor before the stable window has filled once.
  const windowPartial = input.recordingMs < spec.stableWindowMs;
  const holdFloor = missing.length > 0 || windowPartial;
  if (holdFloor && recommended < current) recommended = current;

  // Panic (Knative KPA): the short window (with the backlog) demands `panicThreshold` × the ready capacity: all of it
  // at once, past the rate policies. The scale-down stabilization window then keeps it as long as any other peak.
  let { panicSince, panicMax } = state;
  let shortDemand = 0;
  for (const d of all) if (d.short !== null) shortDemand = Math.max(shortDemand, d.short);
  const over = spec.panicThreshold > 0 && shortDemand / Math.max(ready, 1) >= spec.panicThreshold && shortDemand > current;
  if (over) panicSince = now;
  else { panicSince = null; panicMax = 0; }
  const panic = panicSince !== null;

  // HPA stabilization: the lowest recommendation of the up-window, the highest of the down-window, around current.
  const keepMs = Math.max(spec.scaleUp.stabilizationWindowMs, spec.scaleDown.stabilizationWindowMs);
  const recommendations = [...state.recommendations.filter((r) => now - r.at < keepMs), { at: now, replicas: recommended }];
  let upRec = recommended, downRec = recommended;
  for (const r of recommendations) {
    if (now - r.at < spec.scaleUp.stabilizationWindowMs) upRec = Math.min(upRec, r.replicas);
    if (now - r.at < spec.scaleDown.stabilizationWindowMs) downRec = Math.max(downRec, r.replicas);
  }
  let desired = current;
  if (desired < upRec) desired = upRec;
  if (desired > downRec) desired = downRec;
  const stabilized = desired !== recommended;

  if (panic) {
    desired = Math.max(desired, recommended, current);
    panicMax = Math.max(panicMax, desired);
  }

  // The cold start, measured from the first evaluation with replicas starting to the first with all ready.
  let { startingSince, coldStartMs } = state;
  if (ready < current) startingSince ??= now;
  else if (startingSince !== null) { coldStartMs = now - startingSince; startingSince = null; }

  // Floors: configured min, open schedule, held requests (scale from zero), recent traffic (idle-to-zero).
  const idle = spec.min === 0 && input.idleMs >= spec.idleToZeroMs && input.waiting === 0;
  const floors: [number, DecisionCause][] = [[spec.min, 'min'], [input.scheduleFloor, 'schedule']];
  if (input.waiting > 0) floors.push([1, 'scale-from-zero']);
  if (spec.min === 0 && current > 0 && !idle) floors.push([1, 'min']);
  let floor = 0, floorCause: DecisionCause = 'min';
  for (const [v, c] of floors) if (v > floor) { floor = v; floorCause = c; }
  floor = Math.min(floor, spec.max);

  // Rate policies (HPA): bounded by what changed within each period; a floor above current applies at once.
  const events = state.events.filter((e) => now - e.at < longestPeriod(spec));
  const upLimit = panic ? spec.max : Math.max(scaleUpLimit(current, events, spec.scaleUp, now), current);
  const downLimit = Math.min(scaleDownLimit(current, events, spec.scaleDown, now), current);
  const maxAllowed = Math.min(spec.max, upLimit);
  const minAllowed = Math.max(floor, panic ? current : downLimit);
  const unbounded = desired;
  let cause: DecisionCause;
  if (idle && input.scheduleFloor === 0) {
    desired = 0;
    cause = 'idle-to-zero';
  } else if (desired < minAllowed) {
    desired = minAllowed;
    cause = minAllowed === floor && floor > (panic ? current : downLimit) ? floorCause : 'rate-limited';
  } else if (desired > maxAllowed) {
    desired = maxAllowed;
    cause = maxAllowed === spec.max && spec.max <= upLimit ? 'max' : 'rate-limited';
  } else if (panic) {
    cause = 'panic';
  } else if (desired === floor && recommended < floor && desired <= current) {
    cause = floorCause;
  } else if (desired === current && holdFloor && floor < current && voting.some((m) => (m.replicas as number) < current)) {
    cause = 'missing-signals';
  } else if (stabilized && desired !== recommended) {
    cause = 'stabilized';
  } else if (desired === current) {
    cause = voting.some((m) => m.replicas === current) && metrics.some((m) => m.observed !== null && m.observed > 0) ? 'within-tolerance' : 'steady';
  } else {
    cause = current === 0 ? 'scale-from-zero' : 'demand';
  }
  if (desired < 0) desired = 0;

  const parts = [describeMetrics(metrics)];
  const stableDemand = Math.max(0, ...all.map((d) => d.stable ?? 0));
  if (shortDemand > stableDemand && Math.ceil(shortDemand - EPSILON) > current) parts.push(`last ${Math.round(input.panic.windowMs / 1000)} s want ${fmt(shortDemand)}`);
  if (panic) parts.push(`panic: last ${Math.round(input.panic.windowMs / 1000)} s want ${fmt(shortDemand)} vs ${ready} ready`);
  if (backlog >= 1) parts.push(`backlog ${Math.round(backlog)}`);
  if (riseRps >= Math.max(1, 0.05 * input.panic.requestsPerSecond)) parts.push(`trend +${fmt(riseRps)} rps in ${Math.round(aheadS)} s`);
  if (holdFloor && recommended === current) parts.push(windowPartial ? 'stable window not yet full: no scale-down' : `no scale-down while ${missing.join(', ')} missing`);
  if (input.waiting > 0) parts.push(`${input.waiting} requests waiting`);
  if (input.schedule !== undefined && input.scheduleFloor > 0) parts.push(`schedule ${input.schedule} floor ${input.scheduleFloor}`);
  if (cause === 'stabilized') {
    const down = desired > recommended;
    const windowS = Math.round((down ? spec.scaleDown : spec.scaleUp).stabilizationWindowMs / 1000);
    parts.push(`the ${down ? 'highest' : 'lowest'} recommendation of the last ${windowS} s is ${desired}`);
  }
  if (cause === 'rate-limited') parts.push(`limited from ${unbounded} to ${desired} by the ${desired > current ? 'scale-up' : 'scale-down'} rate policy`);
  if (cause === 'max') parts.push(`capped at max ${spec.max}`);
  if (cause === 'idle-to-zero') parts.push(`idle for ${Math.round(input.idleMs / 1000)} s`);
  const reason = `${cause}: ${current} → ${desired} (${ready} ready); ${parts.filter(Boolean).join('; ')}`;

  return {
    decision: { at: now, current, ready, desired, cause, reason, panic, metrics, recommended, minAllowed, maxAllowed },
    state: { recommendations, events, panicSince, panicMax, fits, startingSince, coldStartMs, trend },
  };
}
