/** What the scale policy's table tests share: the default rules, a spec of the defaults with one target, windows. */
import type { PolicySpec, ScalingRules, ScalingTargets } from '../../gateway/config/scaling-config.js';
import type { WindowSignals } from '../../gateway/plugin-api/scaler.js';

/** The benchmark's seeded noise (Mulberry32), so a table replays the same noise on every run. */
export { seeded } from '../../bench/scaling-model.js';

export const S = 1000;
/** An epoch for the policy's clock, far from 0. */
export const T0 = 1_000_000_000;
export const UP: ScalingRules = { stabilizationWindowMs: 0, policies: [{ type: 'percent', value: 100, periodMs: 15 * S }, { type: 'replicas', value: 4, periodMs: 15 * S }], selectPolicy: 'max' };

export function downRules(stabilizationWindowMs: number): ScalingRules {
  return { stabilizationWindowMs, policies: [{ type: 'percent', value: 100, periodMs: 15 * S }], selectPolicy: 'max' };
}

/** The defaults a user gets, with `targets` and a scale-down stabilization of `downStabilizationMs`. */
export function specOf(targets: ScalingTargets, downStabilizationMs = 30 * S): PolicySpec {
  return {
    min: 1, max: 100, targets, tolerance: 0.1, stableWindowMs: 60 * S, panicThreshold: 2,
    scaleUp: UP, scaleDown: downRules(downStabilizationMs), idleToZeroMs: 300 * S, minLatencySamples: 10,
  };
}

/** A window of `rps` over `windowMs`, every request completed, no latency. */
export function rateWindow(rps: number, windowMs: number): WindowSignals {
  const requests = (rps * windowMs) / S;
  return {
    spanMs: windowMs, windowMs, requests, completed: requests, requestsPerSecond: rps, inFlightMean: 0, inFlightPeak: 0,
    latencyP50Ms: null, latencyP95Ms: null, latencyP99Ms: null, errorRatio: 0, waitingMean: 0, waitingPeak: 0,
  };
}
