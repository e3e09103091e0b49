import type { ScalingConfig } from '../config/gateway-config.js';
import { validatePluginOptions } from '../config/schema-validator.js';
import { stableStringify } from '../config/stable-stringify.js';
import type { YamlPath } from '../config/yaml-source.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { CronExpression, CronSyntaxError } from './cron.js';
import type { RatePolicy } from './scale-policy.js';

/** The discovery type that takes a service's endpoints from its scaler (the process supervisor). */
export const SCALER_DISCOVERY_TYPE = 'scaler';

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
