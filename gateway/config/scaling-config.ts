import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { CronExpression, CronSyntaxError } from './cron.js';
import { validatePluginOptions } from './schema-validator.js';
import { stableStringify } from './stable-stringify.js';
import type { YamlPath } from './yaml-source.js';

/** The discovery type that takes a service's endpoints from its scaler (the process supervisor). */
export const SCALER_DISCOVERY_TYPE = 'scaler';

/** A service's `scaling:` block after loading (buildScalingConfig builds it; docs/scaling.md). */
export interface ScalingConfig {
  readonly scaler: {
    readonly type: string;
    /** The plugin's options, checked against its schema; opaque to core. */
    readonly options: Readonly<Record<string, unknown>>;
    /** The routes file's directory, against which the plugin resolves relative paths in its options. */
    readonly baseDir: string;
    /** type + options + baseDir: an equal key keeps the same scaler instance across reloads. */
    readonly key: string;
  };
  readonly policy: PolicySpec;
  readonly panicWindowMs: number;
  /** How often the loop evaluates the policy. */
  readonly intervalMs: number;
  /** Each scaler call is aborted after this. */
  readonly callTimeoutMs: number;
  /** The orchestrator's count is re-read at least this often (it may be changed from outside). */
  readonly syncMs: number;
  /** After a failed call, wait initialMs doubling up to maxMs (full jitter) before the next. */
  readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  readonly schedules: readonly ScheduleConfig[];
  /** Requests for a service without a ready endpoint wait in a queue of at most maxQueue, each up to timeoutMs. */
  readonly hold: { readonly maxQueue: number; readonly timeoutMs: number };
}

/** One `scaling.schedules[]` entry after loading. */
export interface ScheduleConfig {
  /** When a window starts: a five-field cron expression, in `timezone`. */
  readonly cron: string;
  readonly timezone: string;
  /** How long the window lasts from each start. */
  readonly durationMinutes: number;
  /** The replica floor inside the window (demand may scale above it). */
  readonly min: number;
  /** The floor is raised this long before each start, so instances are warm when the window opens. */
  readonly leadMs: number;
}

export interface RatePolicy {
  /** percent: change by this % of the replicas at the start of the period; replicas: by this many. */
  readonly type: 'percent' | 'replicas';
  readonly value: number;
  readonly periodMs: number;
}

export interface ScalingRules {
  /** Recommendations of the last stabilizationWindowMs are considered: the lowest for scale-up, the highest for down. */
  readonly stabilizationWindowMs: number;
  readonly policies: readonly RatePolicy[];
  /** max: the policy allowing the biggest change wins (HPA default); min: the smallest; disabled: no change this way. */
  readonly selectPolicy: 'max' | 'min' | 'disabled';
}

export interface ScalingTargets {
  /** Mean requests in flight per replica (held requests count as in flight). */
  readonly inFlight?: number;
  /** Requests per second per replica. */
  readonly rps?: number;
  /** A latency percentile to hold the service under. */
  readonly latency?: { readonly percentile: 50 | 95 | 99; readonly ms: number };
  /** Mean CPU per instance in cores, when the scaler reports it. */
  readonly cpuCores?: number;
  /** Mean resident memory per instance in MiB, when the scaler reports it. */
  readonly memoryMiB?: number;
}

export interface PolicySpec {
  readonly min: number;
  readonly max: number;
  readonly targets: ScalingTargets;
  /**
   * Demand targets: the most headroom kept over the stable window on the way down (the rate's measured noise, at
   * least half of this; all of it until measured). Resource targets: no change while |observed / target − 1| is
   * within this (HPA: 0.1).
   */
  readonly tolerance: number;
  readonly stableWindowMs: number;
  /** Panic when the panic window demands this many times the ready capacity; 0 turns panic mode off. */
  readonly panicThreshold: number;
  readonly scaleUp: ScalingRules;
  readonly scaleDown: ScalingRules;
  /** With min 0: no request for this long takes the service to zero. */
  readonly idleToZeroMs: number;
  /** Fewer requests than this in a window give no latency recommendation (a percentile of 3 requests is noise). */
  readonly minLatencySamples: number;
}

/** Requests fewer than this in a window give no latency recommendation. */
const MIN_LATENCY_SAMPLES = 10;

/** `scaling:` as routes.schema.json describes it, defaults filled in by the schema validator. */
export interface RawScaling {
  scaler: { type: string } & Record<string, unknown>;
  min: number;
  max: number;
  target: ScalingConfig['policy']['targets'];
  tolerance: number;
  windows: { stableMs: number; panicMs: number };
  panicThreshold: number;
  scaleUp: { stabilizationWindowMs: number; policies: RatePolicy[]; selectPolicy: 'max' | 'min' | 'disabled' };
  scaleDown: { stabilizationWindowMs: number; policies: RatePolicy[]; selectPolicy: 'max' | 'min' | 'disabled' };
  schedules: { cron: string; timezone: string; durationMinutes: number; min: number; leadMs: number }[];
  idleToZeroMs: number;
  hold: { maxQueue: number; timeoutMs: number };
  intervalMs: number;
  callTimeoutMs: number;
  syncMs: number;
  backoff: { initialMs: number; maxMs: number };
}

export type ReportProblem = (path: YamlPath, message: string, key?: string) => void;

/**
 * Checks a service's `scaling:` block beyond its schema (the scaler's own options, min ≤ max, cron syntax and time
 * zones, windows) and turns it into a ScalingConfig. Problems are reported at their YAML path.
 */
export function buildScalingConfig(raw: RawScaling, base: YamlPath, plugins: PluginRegistry, report: ReportProblem, baseDir: string): ScalingConfig {
  const { type, ...options } = raw.scaler;
  const plugin = plugins.scaler(type);
  if (!plugin) {
    report([...base, 'scaler', 'type'], `unknown scaler type "${type}" (known: ${plugins.scalerTypes().join(', ')})`);
  } else {
    const found = validatePluginOptions(plugin.optionsSchema, options, [...base, 'scaler']);
    for (const p of found) report(p.path, p.message, p.key);
    if (!found.length) for (const [rel, message] of plugin.check?.(options) ?? []) report([...base, 'scaler', ...rel], message);
  }
  if (raw.min > raw.max) report([...base, 'min'], `must not exceed max (${raw.max})`);
  if (raw.windows.panicMs > raw.windows.stableMs) report([...base, 'windows', 'panicMs'], `must not exceed windows.stableMs (${raw.windows.stableMs})`);
  if (raw.panicThreshold > 0 && raw.panicThreshold <= 1) report([...base, 'panicThreshold'], 'must be above 1 (2 = panic at twice the ready capacity), or 0 to turn panic off');
  if (raw.backoff.initialMs > raw.backoff.maxMs) report([...base, 'backoff', 'initialMs'], `must not exceed backoff.maxMs (${raw.backoff.maxMs})`);
  raw.schedules.forEach((s, i) => {
    try {
      new CronExpression(s.cron, s.timezone);
    } catch (err) {
      if (!(err instanceof CronSyntaxError)) throw err;
      const where = err.message.startsWith('unknown time zone') ? 'timezone' : 'cron';
      report([...base, 'schedules', i, where], err.message);
    }
    if (s.min > raw.max) report([...base, 'schedules', i, 'min'], `must not exceed max (${raw.max})`);
  });
  return {
    // The directory is in the key: the same relative paths from another routes file are other files.
    scaler: { type, options, baseDir, key: stableStringify({ type, options, baseDir }) },
    policy: {
      min: raw.min, max: raw.max, targets: raw.target, tolerance: raw.tolerance, stableWindowMs: raw.windows.stableMs,
      panicThreshold: raw.panicThreshold, scaleUp: raw.scaleUp, scaleDown: raw.scaleDown, idleToZeroMs: raw.idleToZeroMs,
      minLatencySamples: MIN_LATENCY_SAMPLES,
    },
    panicWindowMs: raw.windows.panicMs,
    intervalMs: raw.intervalMs,
    callTimeoutMs: raw.callTimeoutMs,
    syncMs: raw.syncMs,
    backoff: raw.backoff,
    schedules: raw.schedules,
    hold: raw.hold,
  };
}

/**
 * `discovery: { type: scaler }`: the endpoints come from the service's scaler. Valid only with a scaler that runs
 * the instances itself; and such a scaler needs it (nothing else knows the ports it picked).
 */
export function checkScalerDiscovery(
  discoveryType: string, discoveryOptions: Record<string, unknown>, scaling: RawScaling | undefined, base: YamlPath,
  plugins: PluginRegistry, report: ReportProblem,
): void {
  const provides = scaling !== undefined && plugins.scaler(scaling.scaler.type)?.providesEndpoints === true;
  if (discoveryType === SCALER_DISCOVERY_TYPE) {
    for (const key of Object.keys(discoveryOptions)) report([...base, 'discovery'], `unknown field "${key}"`, key);
    if (!provides) report([...base, 'discovery', 'type'], 'type scaler needs a scaling.scaler that runs the instances (type: process)');
  } else if (provides) {
    report([...base, 'discovery', 'type'], `the ${scaling?.scaler.type} scaler runs the instances itself: use discovery: { type: scaler }`);
  }
}
