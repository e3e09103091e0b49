import type { PolicySpec, ScalingRules } from '../config/scaling-config.js';
import type { ResourceUsage, WindowSignals } from '../plugin-api/scaler.js';

/**
 * The scaling decision as a pure function: signals and the previous state in, a replica count, a reason and the next
 * state out. No I/O, no clock of its own, so every rule is table-tested (test/unit/scale-policy.test.ts).
 *
 * It is Kubernetes' HPA algorithm (desired = ceil(current × observed / target), a tolerance band, the highest
 * recommendation of the scale-down stabilization window, scale-up/-down rate policies, min/max) fed with the
 * gateway's demand signals, plus Knative's panic mode: when the short window demands at least `panicThreshold` ×
 * the ready capacity, scale up at once and never down until the surge has been in the stable window for a whole
 * window. Schedules, held requests and idle-to-zero set the floor.
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

export interface PolicyState {
  /** Unstabilized recommendations with their time, newest last (pruned to the longest stabilization window). */
  readonly recommendations: readonly { readonly at: number; readonly replicas: number }[];
  /** Scale changes carried out, signed (+2 = two added), for the rate policies (pruned to the longest period). */
  readonly events: readonly { readonly at: number; readonly change: number }[];
  /** Last time the panic window was over the threshold; null when not panicking. */
  readonly panicSince: number | null;
  /** The highest count decided during this panic: a panic never scales down. */
  readonly panicMax: number;
}

export const INITIAL_STATE: PolicyState = Object.freeze({ recommendations: [], events: [], panicSince: null, panicMax: 0 });

export type MetricName = 'inFlight' | 'rps' | 'latency' | 'cpuCores' | 'memoryMiB';

export interface MetricRecommendation {
  readonly metric: MetricName;
  /** Observed: the total for inFlight/rps, the percentile for latency, the per-instance mean for resources. */
  readonly observed: number | null;
  readonly target: number;
  /** Replicas this metric asks for; null when it has no data (missing) or no say (too few latency samples). */
  readonly replicas: number | null;
  readonly missing: boolean;
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

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1);
}

/** Replicas for a ratio observed/target of a per-instance value over `base` instances, with the tolerance band. */
function byRatio(current: number, base: number, ratio: number, tolerance: number): number {
  const raw = base * ratio;
  if (current > 0 && Math.abs(raw / current - 1) <= tolerance + EPSILON) return current;
  return Math.max(0, Math.ceil(raw - EPSILON));
}

function latencyOf(w: WindowSignals, percentile: 50 | 95 | 99): number | null {
  return percentile === 50 ? w.latencyP50Ms : percentile === 95 ? w.latencyP95Ms : w.latencyP99Ms;
}

/** What each configured target asks for over one window. Resources only for the stable window. */
export function recommend(spec: PolicySpec, input: PolicyInput, w: WindowSignals, withResources: boolean): MetricRecommendation[] {
  const { targets: t, tolerance } = spec;
  const { current, ready } = input;
  const base = ready > 0 ? ready : current;
  const out: MetricRecommendation[] = [];
  if (t.inFlight !== undefined) {
    const observed = w.inFlightMean;
    out.push({ metric: 'inFlight', observed, target: t.inFlight, replicas: byRatio(current, 1, observed / t.inFlight, tolerance), missing: false });
  }
  if (t.rps !== undefined) {
    const observed = w.requestsPerSecond;
    out.push({ metric: 'rps', observed, target: t.rps, replicas: byRatio(current, 1, observed / t.rps, tolerance), missing: false });
  }
  if (t.latency !== undefined) {
    const observed = latencyOf(w, t.latency.percentile);
    const enough = observed !== null && w.completed >= spec.minLatencySamples;
    // Without traffic there is no latency to hold down: no say either way (demand targets decide).
    let replicas = enough ? byRatio(current, Math.max(base, 1), (observed as number) / t.latency.ms, tolerance) : null;
    // Latency measured while instances are still starting says nothing about the full count: never down on it then.
    if (replicas !== null && ready < current && replicas < current) replicas = current;
    out.push({ metric: 'latency', observed, target: t.latency.ms, missing: false, replicas });
  }
  if (withResources) {
    const r = input.resources;
    if (t.cpuCores !== undefined) {
      const observed = r?.cpuCoresMean ?? null;
      const ok = observed !== null && r !== null && r.instances > 0;
      out.push({ metric: 'cpuCores', observed, target: t.cpuCores, missing: !ok, replicas: ok ? byRatio(current, r.instances, observed / t.cpuCores, tolerance) : null });
    }
    if (t.memoryMiB !== undefined) {
      const observed = r?.memoryBytesMean ?? null;
      const ok = observed !== null && r !== null && r.instances > 0;
      out.push({ metric: 'memoryMiB', observed, target: t.memoryMiB, missing: !ok, replicas: ok ? byRatio(current, r.instances, observed / (t.memoryMiB * 1048576), tolerance) : null });
    }
  }
  return out;
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
    return `${m.metric} ${fmt(m.observed ?? 0)}${unit} vs ${fmt(m.target)}${m.metric === 'memoryMiB' ? ' MiB' : unit}${m.metric === 'inFlight' || m.metric === 'rps' ? '/replica' : ''} → ${m.replicas}`;
  }).join(', ');
}

/** Records a carried-out change for the rate policies (call after the scaler succeeded). */
export function recordScale(state: PolicyState, at: number, from: number, to: number): PolicyState {
  if (from === to) return state;
  return { ...state, events: [...state.events, { at, change: to - from }] };
}

/** One evaluation. Returns the decision and the state to pass to the next call. */
export function decide(spec: PolicySpec, state: PolicyState, input: PolicyInput): { decision: PolicyDecision; state: PolicyState } {
  const { now, current, ready } = input;
  const metrics = recommend(spec, input, input.stable, true);
  const missing = metrics.filter((m) => m.missing).map((m) => m.metric);
  const voting = metrics.filter((m) => m.replicas !== null);
  // No metric has a say (only a latency target, and too few requests to judge): idle if nothing came, else hold.
  let recommended = voting.length ? Math.max(...voting.map((m) => m.replicas as number))
    : input.stable.requests === 0 && input.stable.completed === 0 && input.waiting === 0 ? 0 : current;
  // Up fast, down slow: demand over the short window may raise the recommendation (it lags a ramp by 3 s, the stable
  // window by 30 s); only the stable window can lower it. Tolerance applies to both, so noise does not move it.
  const short = recommend(spec, input, input.panic, false);
  let raisedBy: MetricRecommendation | null = null;
  for (const m of short) {
    if (m.replicas !== null && m.replicas > current && m.replicas > recommended) { recommended = m.replicas; raisedBy = m; }
  }
  // Never down because a signal is missing, nor before the stable window has filled once.
  const windowPartial = input.recordingMs < spec.stableWindowMs;
  const holdFloor = missing.length > 0 || windowPartial;
  if (holdFloor && recommended < current) recommended = current;

  // Panic (Knative KPA): demand over the short window against the capacity that is ready now.
  let { panicSince, panicMax } = state;
  let panicRaw = 0;
  if (spec.panicThreshold > 0) {
    for (const m of short) {
      if (m.replicas === null || m.observed === null) continue;
      const raw = m.metric === 'inFlight' || m.metric === 'rps' ? m.observed / m.target : Math.max(ready, 1) * m.observed / m.target;
      panicRaw = Math.max(panicRaw, raw);
    }
    const over = panicRaw / Math.max(ready, 1) >= spec.panicThreshold && panicRaw > current;
    if (over) panicSince = now;
    else if (panicSince !== null && now - panicSince >= spec.stableWindowMs) { panicSince = null; panicMax = 0; }
  }
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
    desired = Math.max(desired, recommended, Math.ceil(panicRaw - EPSILON), current);
    if (desired > panicMax) panicMax = desired; else desired = panicMax;
  }

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
  if (idle && input.scheduleFloor === 0 && recommended === 0) {
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
  if (raisedBy !== null) parts.push(`last ${Math.round(input.panic.windowMs / 1000)} s: ${describeMetrics([raisedBy])}`);
  if (panic) parts.push(`panic: short window wants ${fmt(panicRaw)} vs ${ready} ready`);
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
    state: { recommendations, events, panicSince, panicMax },
  };
}
