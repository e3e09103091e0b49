import type { DiscoveryUpdate } from './discovery.js';
import type { PluginContext } from './plugin-context.js';

/**
 * What the gateway saw of one service when it decided, handed to the scaler with each `scale` call (a webhook sends
 * it on; a process supervisor ignores it). Rates are per second, durations in milliseconds, windows as configured.
 */
export interface LoadReport {
  /** Epoch milliseconds of the decision. */
  readonly at: number;
  /** The count the decision started from (null when unknown), and why it chose the new one (for humans). */
  readonly current: number | null;
  readonly reason: string;
  readonly stable: WindowSignals;
  readonly panic: WindowSignals;
  /** Endpoints discovery lists as ready for traffic now. */
  readonly readyEndpoints: number;
  /** Requests held because the service had no ready endpoint (scale from zero). */
  readonly waiting: number;
  /** Mean CPU (cores) and memory (bytes) per instance, when the scaler reports them. */
  readonly resources: ResourceUsage | null;
}

/** Signals over one sliding window (the stable one, 60 s by default, or the short panic one, 6 s). */
export interface WindowSignals {
  /** How much of the window had data: less than `windowMs` right after start-up. */
  readonly spanMs: number;
  readonly windowMs: number;
  /** Requests that arrived (routed to the service) in the window, and their rate: the demand. */
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Requests that finished in the window: the base of the latency percentiles and the error ratio. */
  readonly completed: number;
  /** Time-weighted mean of requests in flight (held ones included), and the highest count seen. */
  readonly inFlightMean: number;
  readonly inFlightPeak: number;
  /** Latency percentiles in ms from a log-spaced histogram (about ±9 %); null without requests. */
  readonly latencyP50Ms: number | null;
  readonly latencyP95Ms: number | null;
  readonly latencyP99Ms: number | null;
  /** Share of finished requests answered 5xx (by the upstream or the gateway); 0 without any. */
  readonly errorRatio: number;
  /** Time-weighted mean and peak of requests waiting for a first endpoint. */
  readonly waitingMean: number;
  readonly waitingPeak: number;
}

/** Resource use per instance as a scaler measured it; the policy compares the means with `target.cpuCores`/`memoryMiB`. */
export interface ResourceUsage {
  /** Instances measured (ready ones). */
  readonly instances: number;
  /** Mean CPU use per instance in cores (1 = one core fully busy). */
  readonly cpuCoresMean: number | null;
  /** Mean resident memory per instance in bytes. */
  readonly memoryBytesMean: number | null;
}

/**
 * Carries out scaling decisions against an orchestrator. Core decides how many replicas (gateway/scaling/
 * scale-policy.ts); a scaler only reads the current count and applies a new one.
 *
 * Timing and ownership:
 * - Core makes at most one call per service at a time (never `scale` while `currentReplicas` runs for the same
 *   service), passes a `signal` that aborts after the service's `callTimeoutMs` (5 s by default), and backs off
 *   after a failure. A call must stop promptly when `signal` aborts and must not retry past it.
 * - A rejected promise means "not done": core keeps its last known count, logs it and tries again later. A scaler
 *   never throws synchronously.
 * - `scale` is idempotent: asking for the count already in place is a no-op and must succeed.
 * - The instance belongs to core: it is created when a service names it in routes.yaml and closed (once) when no
 *   config uses it any more, or at shutdown. `close` releases what the instance holds (the process scaler stops its
 *   children gracefully).
 */
export interface Scaler {
  /**
   * The replica count the orchestrator is set to (what was asked for, including instances still starting), not
   * the number ready: ready ones are what discovery lists.
   */
  currentReplicas(service: string, signal: AbortSignal): Promise<number>;
  /** Asks the orchestrator for `desired` replicas (an integer from the service's min to max). */
  scale(service: string, desired: number, load: LoadReport, signal: AbortSignal): Promise<void>;
  /**
   * Optional: resource use per instance (mean CPU cores, resident bytes), for `target.cpuCores` and
   * `target.memoryMiB`. Resolve null when unknown; core then never scales down on resource grounds.
   */
  resources?(service: string, signal: AbortSignal): Promise<ResourceUsage | null>;
  /**
   * Optional: the scaler runs the instances itself and knows their addresses (the process supervisor). A service
   * with `discovery: { type: scaler }` takes its endpoints from this stream, with the same contract as
   * `Discovery.watch`: the first update is a `reset`; an endpoint is listed only once it is ready for traffic.
   */
  endpoints?(service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate>;
  close(): Promise<void>;
}

/**
 * A scaler plugin: a plain object listed in plugins/index.ts. `optionsSchema` is a JSON Schema for the options beside
 * `type` under a service's `scaling.scaler:`; core validates them when the config is loaded (file:line:col).
 */
export interface ScalerPlugin<O = Record<string, unknown>> {
  readonly kind: 'scaler';
  readonly type: string;
  readonly optionsSchema: Readonly<Record<string, unknown>>;
  /** True when instances of this plugin implement `endpoints` (a service may then use `discovery: { type: scaler }`). */
  readonly providesEndpoints?: boolean;
  /** Checks that a schema cannot express; returns problems as [relative YAML path, message]. */
  check?(options: O): readonly (readonly [path: readonly (string | number)[], message: string])[];
  create(options: O, ctx: PluginContext): Scaler;
}
