import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import { SliceClock } from '../runtime/slice-clock.js';
import type { MetricsSnapshot } from './cluster-metrics.js';
import { ConfigMetrics } from './config-metrics.js';
import { FleetMetrics } from './fleet-metrics.js';
import { GatewayErrorWindow } from './gateway-error-window.js';
import { KnownServices } from './label-values.js';
import { PolicyMetrics } from './policy-metrics.js';
import { RequestMetrics } from './request-metrics.js';
import { exposition, ROUTE_FAMILIES, SERIES_WIDTH, type Exposition } from './request-series.js';
import { ScalingMetrics } from './scaling-metrics.js';
import { TracingMetrics } from './tracing-metrics.js';
import { TrafficStats } from './traffic-window.js';
import { UpstreamMetrics } from './upstream-metrics.js';

export interface GatewayMetricsOptions {
  /** The snapshot serving now; gauges for in-flight, endpoints and discovery are read from it at scrape time. */
  readonly current: () => RuntimeSnapshot | undefined;
  readonly version: string;
  readonly now?: () => number;
  /** Dashboard history: bucket width and count (default 5 s × 60 = the last 5 minutes). */
  readonly trafficBucketMs?: number;
  readonly trafficBuckets?: number;
}

// Process metrics (CPU, memory, event-loop lag, GC, handles) are per process, not per gateway: one registry for all,
// so tests that start several gateways in one process do not stack GC observers.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The process metrics alone, as a part of a cluster's scrape: the primary adds its own, so the summed CPU and memory
 * are the whole gateway's (a container's limit counts the primary too), not only the workers'.
 */
export async function processSnapshot(): Promise<MetricsSnapshot> {
  return { routes: { keys: [], values: new Float64Array(0) }, metrics: await processMetrics().getMetricsAsJSON() };
}

/**
 * Every metric the gateway exports, one part per job on one registry, each part the API its reporters call:
 * `requests` (the request path), `upstreams` (resilience code), `config` (the reloader), `scaling` (the scaling loop).
 * Names, types and labels are documented in docs/metrics.md (a test keeps the two in step).
 *
 * Label values are bounded by construction: route and service names come from the loaded config, endpoint addresses
 * from EndpointState objects (that is, from discovery), status as a class, reasons as short fixed words; nothing a
 * client sends becomes a label value.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  /** The dashboard's history per service: requests and latency (from `requests`), replica counts (from `scaling`). */
  readonly traffic: TrafficStats;
  /** The dashboard's history of the answers the gateway made itself, by error code (from `requests`). */
  readonly gatewayErrors: GatewayErrorWindow;
  readonly requests: RequestMetrics;
  readonly upstreams: UpstreamMetrics;
  readonly config: ConfigMetrics;
  readonly scaling: ScalingMetrics;
  /** Each policy's decisions (the routes' policy chains report to it). */
  readonly policies: PolicyMetrics;
  readonly fleet: FleetMetrics;
  /** Spans exported and dropped (gateway/tracing/). */
  readonly tracing: TracingMetrics;
  readonly #services = new KnownServices();

  constructor(options: GatewayMetricsOptions) {
    const now = options.now ?? Date.now;
    this.traffic = new TrafficStats(options.trafficBucketMs, options.trafficBuckets, now);
    // Registered in the order of the exposition.
    this.gatewayErrors = new GatewayErrorWindow(this.traffic.bucketMs, this.traffic.size, now);
    this.requests = new RequestMetrics(this.registry, this.traffic, this.gatewayErrors);
    this.upstreams = new UpstreamMetrics(this.registry, options.current, this.#services, now);
    this.policies = new PolicyMetrics(this.registry);
    this.config = new ConfigMetrics(this.registry, now);
    this.scaling = new ScalingMetrics(this.registry, this.#services, this.traffic, now);
    this.fleet = new FleetMetrics(this.registry);
    this.tracing = new TracingMetrics(this.registry);
    const build = new Gauge({ name: 'gantry_build_info', help: 'Always 1; labels: gantry and Node.js versions.', labelNames: ['version', 'node'], aggregator: 'max', registers: [this.registry] });
    build.set({ version: options.version, node: process.versions.node }, 1);
  }

  /** At start and after each applied reload: every part follows the serving config. */
  configLoaded(snapshot: RuntimeSnapshot): void {
    const { config } = snapshot;
    this.requests.configLoaded(config);
    this.#services.add(config.services.keys());
    this.traffic.retain(config.services.keys());
    this.scaling.configLoaded(config);
    this.config.configLoaded(snapshot);
  }

  /** The Prometheus text exposition, in chunks: the per-route families, the gateway's other metrics, the process's. */
  expose(): Exposition {
    const registries = async () => `${await this.registry.metrics()}${await processMetrics().metrics()}`;
    return { contentType: this.registry.contentType, chunks: exposition(this.requests.series(), new SliceClock(), registries) };
  }

  /** This process's numbers, for a cluster worker to send; mergeMetrics (cluster-metrics.ts) sums them. */
  async snapshot(): Promise<MetricsSnapshot> {
    const [own, proc] = await Promise.all([this.registry.getMetricsAsJSON(), processMetrics().getMetricsAsJSON()]);
    const series = this.requests.series();
    const values = new Float64Array(series.length * SERIES_WIDTH);
    series.forEach((s, i) => s.writeTo(values, i * SERIES_WIDTH));
    return { routes: { keys: series.map((s) => `${s.route}\n${s.service}`), values }, metrics: [...own, ...proc] };
  }

  /** Every metric name exported, process metrics included (for the documentation test). */
  names(): string[] {
    return [...ROUTE_FAMILIES, ...this.registry.getMetricsAsArray(), ...processMetrics().getMetricsAsArray()].map((m) => m.name);
  }
}
