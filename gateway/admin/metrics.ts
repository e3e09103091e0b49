import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Exchange } from '../proxy/exchange.js';
import type { ConfigProblem } from '../errors.js';
import type { ReloadTiming } from '../runtime/reload-timer.js';
import type { ReloadOutcome } from '../runtime/reloader.js';
import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { BREAKER_STATES, EndpointHealthBoard, type BreakerState, type HealthState } from './endpoint-health.js';
import { RecentList } from './recent-list.js';
import { SliceClock } from '../runtime/slice-clock.js';
import type { MetricsSnapshot } from './cluster-metrics.js';
import { CollectedMetric, exposition, ROUTE_FAMILIES, RouteSeries, SERIES_WIDTH, type Exposition } from './request-series.js';
import { TrafficStats } from './traffic-window.js';

/** Label value for requests that matched no route (route and service names must start with a letter or digit). */
export const NO_ROUTE = '_none';
/** Label value for a service name the loaded configs never had: a caller bug, kept from growing the series. */
export const UNKNOWN_SERVICE = '_unknown';
// Reasons are short words chosen by code; anything else becomes `other`, so a label can never carry client input.
const REASON = /^[a-z][a-z0-9-]{0,31}$/;

export function boundedReason(reason: string): string {
  return REASON.test(reason) ? reason : 'other';
}

export interface ReloadRecord {
  /** Epoch ms when the reload finished. */
  readonly at: number;
  readonly result: ReloadOutcome['result'];
  readonly generation: number;
  readonly hash: string | null;
  readonly message: string | null;
  readonly problems: number;
}

/** What the metrics keep of a reload's outcome (a ReloadOutcome is one; a cluster worker gets it from the primary). */
export type ReloadResult =
  | { readonly result: 'applied' | 'unchanged'; readonly generation: number; readonly hash: string }
  | { readonly result: 'refused'; readonly generation: number; readonly problems: readonly ConfigProblem[]; readonly message: string };

export interface ScalingDecision {
  readonly service: string;
  readonly current: number;
  readonly desired: number;
  /** Why, for humans (the admin API and dashboard show it; it is never a label). */
  readonly reason: string;
  /** Epoch ms of the decision when it was taken elsewhere (a cluster worker shows the primary's); default now. */
  readonly at?: number;
}

export interface ScalingDecisionRecord extends ScalingDecision {
  readonly at: number;
  readonly direction: 'up' | 'down' | 'hold';
}

export interface ReplicaCounts {
  readonly service: string;
  readonly desired: number;
  readonly current: number;
  readonly at: number;
}

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
 * Every metric the gateway exports, and the one API that code reporting events calls. Names, types and labels are
 * documented in docs/metrics.md (a test keeps the two in step).
 *
 * Label values are bounded by construction: route and service names come from the loaded config, endpoint addresses
 * from EndpointState objects (that is, from discovery), status as a class, reasons as short fixed words; nothing a
 * client sends becomes a label value.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly health = new EndpointHealthBoard();
  readonly traffic: TrafficStats;
  readonly #now: () => number;
  readonly #current: () => RuntimeSnapshot | undefined;

  /** Route name → its series; a route that changed service gets a new series under the same name. */
  readonly #byRoute = new Map<string, RouteSeries>();
  /** The series of the configured routes (and of requests still finishing on an older config), by route and service. */
  readonly #allSeries = new Map<string, RouteSeries>();
  readonly #unmatched: RouteSeries;
  readonly #knownServices = new Set<string>();
  readonly #reloads = new RecentList<ReloadRecord>(50);
  readonly #decisions = new RecentList<ScalingDecisionRecord>(100);
  readonly #replicas = new Map<string, ReplicaCounts>();

  readonly #errors: Counter<'service' | 'code'>;
  readonly #reloadsTotal: Counter<'result'>;
  readonly #lastReloadOk: Gauge;
  readonly #configVersion: Gauge;
  readonly #configInfo: Gauge<'hash' | 'file'>;
  readonly #configLoadedAt: Gauge;
  readonly #reloadLoopDelay: Gauge;
  readonly #reloadDuration: Gauge;
  readonly #breakerTransitions: Counter<'service' | 'state'>;
  readonly #ejections: Counter<'service' | 'reason'>;
  readonly #healthTransitions: Counter<'service' | 'health'>;
  readonly #retries: Counter<'service' | 'reason'>;
  readonly #budgetExhausted: Counter<'service'>;
  readonly #bulkheadRejections: Counter<'service'>;
  readonly #decisionsTotal: Counter<'service' | 'direction'>;
  readonly #desiredReplicas: Gauge<'service'>;
  readonly #currentReplicas: Gauge<'service'>;

  constructor(options: GatewayMetricsOptions) {
    this.#now = options.now ?? Date.now;
    this.#current = options.current;
    this.traffic = new TrafficStats(options.trafficBucketMs, options.trafficBuckets, this.#now);
    this.#unmatched = new RouteSeries(NO_ROUTE, NO_ROUTE, null);
    this.#allSeries.set(`${NO_ROUTE}\n${NO_ROUTE}`, this.#unmatched);
    const registers = [this.registry];

    // Requests: plain numbers on the hot path, formatted when scraped (expose, routeSeriesChunks).
    this.#errors = new Counter({ name: 'gantry_errors_total', help: 'Answers the gateway made itself (docs/errors.md), by service and error code.', labelNames: ['service', 'code'], registers });

    // Upstreams, read from the serving snapshot when scraped.
    const live = () => this.#liveEndpoints();
    this.registry.registerMetric(new CollectedMetric('gantry_requests_in_flight', 'Requests (and WebSocket tunnels) in flight, by service.', 'gauge', ['service'],
      () => [...this.#liveServices()].map(([service, eps]) => ({ labels: { service }, value: eps.reduce((n, e) => n + e.inFlight, 0) }))) as never);
    this.registry.registerMetric(new CollectedMetric('gantry_endpoint_in_flight', 'Requests in flight, by endpoint.', 'gauge', ['service', 'endpoint'],
      () => live().map((e) => ({ labels: { service: e.service, endpoint: e.address }, value: e.inFlight }))) as never);
    this.registry.registerMetric(new CollectedMetric('gantry_upstream_endpoints', 'Endpoints discovery lists, by service.', 'gauge', ['service'],
      () => [...this.#liveServices()].map(([service, eps]) => ({ labels: { service }, value: eps.length })), 'max') as never);
    this.registry.registerMetric(new CollectedMetric('gantry_endpoint_healthy', '1 when the endpoint is healthy, 0 when a check or outlier detection marked it unhealthy.', 'gauge', ['service', 'endpoint'],
      () => live().map((e) => ({ labels: { service: e.service, endpoint: e.address }, value: this.health.get(e).health === 'healthy' ? 1 : 0 })), 'min') as never);
    this.registry.registerMetric(new CollectedMetric('gantry_endpoint_ejected', '1 while the endpoint is ejected from balancing.', 'gauge', ['service', 'endpoint'],
      () => live().map((e) => ({ labels: { service: e.service, endpoint: e.address }, value: this.health.get(e).ejected ? 1 : 0 })), 'max') as never);
    this.registry.registerMetric(new CollectedMetric('gantry_breaker_state', 'Circuit breaker state per endpoint: 1 for the current state, 0 for the others.', 'gauge', ['service', 'endpoint', 'state'],
      () => live().flatMap((e) => {
        const now = this.health.get(e).breaker;
        return BREAKER_STATES.map((state) => ({ labels: { service: e.service, endpoint: e.address, state }, value: state === now ? 1 : 0 }));
      })) as never);
    this.registry.registerMetric(new CollectedMetric('gantry_discovery_up', '1 when the service\'s discovery source answers, 0 while it is down (the last endpoints are kept).', 'gauge', ['service'],
      () => this.#pools().map(([service, pool]) => ({ labels: { service }, value: pool.status.up ? 1 : 0 })), 'min') as never);
    this.registry.registerMetric(new CollectedMetric('gantry_discovery_last_success_timestamp_seconds', 'When discovery last delivered an update, by service (Unix time).', 'gauge', ['service'],
      () => this.#pools().flatMap(([service, pool]) => (pool.status.lastSuccessAt === null ? [] : [{ labels: { service }, value: pool.status.lastSuccessAt / 1000 }])), 'max') as never);
    this.#breakerTransitions = new Counter({ name: 'gantry_breaker_transitions_total', help: 'Circuit breaker state changes, by service and the state entered.', labelNames: ['service', 'state'], registers });
    this.#ejections = new Counter({ name: 'gantry_endpoint_ejections_total', help: 'Endpoints ejected from balancing, by service and reason.', labelNames: ['service', 'reason'], registers });
    this.#healthTransitions = new Counter({ name: 'gantry_endpoint_health_transitions_total', help: 'Endpoint health changes, by service and the health entered.', labelNames: ['service', 'health'], registers });
    this.#retries = new Counter({ name: 'gantry_retries_total', help: 'Upstream attempts retried, by service and reason.', labelNames: ['service', 'reason'], registers });
    this.#budgetExhausted = new Counter({ name: 'gantry_retry_budget_exhausted_total', help: 'Retries not made because the service\'s retry budget was spent.', labelNames: ['service'], registers });
    this.#bulkheadRejections = new Counter({ name: 'gantry_bulkhead_rejections_total', help: 'Requests refused because the service\'s concurrency limit (bulkhead) was full.', labelNames: ['service'], registers });

    // Config.
    this.#reloadsTotal = new Counter({ name: 'gantry_config_reloads_total', help: 'Config reloads, by result: applied, unchanged or refused.', labelNames: ['result'], aggregator: 'max', registers });
    this.#lastReloadOk = new Gauge({ name: 'gantry_config_last_reload_successful', help: '1 unless the last reload was refused.', aggregator: 'min', registers });
    this.#configVersion = new Gauge({ name: 'gantry_config_version', help: 'Generation of the serving config: 1 at start, +1 per applied reload.', aggregator: 'max', registers });
    this.#configInfo = new Gauge({ name: 'gantry_config_info', help: 'Always 1; labels: sha256 of the serving routes file and its path.', labelNames: ['hash', 'file'], aggregator: 'max', registers });
    this.#configLoadedAt = new Gauge({ name: 'gantry_config_loaded_timestamp_seconds', help: 'When the serving config was loaded (Unix time).', aggregator: 'max', registers });
    this.#reloadLoopDelay = new Gauge({ name: 'gantry_reload_event_loop_delay_max_seconds', help: 'The longest the event loop was blocked during the last reload.', aggregator: 'max', registers });
    this.#reloadDuration = new Gauge({ name: 'gantry_reload_duration_seconds', help: 'Wall time of the last reload, from reading the file to the swap.', aggregator: 'max', registers });
    for (const result of ['applied', 'unchanged', 'refused'] as const) this.#reloadsTotal.inc({ result }, 0);
    this.#lastReloadOk.set(1);

    // Scaling.
    this.#decisionsTotal = new Counter({ name: 'gantry_scaling_decisions_total', help: 'Scaling decisions, by service and direction (up, down, hold).', labelNames: ['service', 'direction'], aggregator: 'max', registers });
    this.#desiredReplicas = new Gauge({ name: 'gantry_replicas_desired', help: 'Replicas the scaling policy wants, by service.', labelNames: ['service'], aggregator: 'max', registers });
    this.#currentReplicas = new Gauge({ name: 'gantry_replicas_current', help: 'Replicas the scaler reports running, by service.', labelNames: ['service'], aggregator: 'max', registers });

    const build = new Gauge({ name: 'gantry_build_info', help: 'Always 1; labels: gantry and Node.js versions.', labelNames: ['version', 'node'], aggregator: 'max', registers });
    build.set({ version: options.version, node: process.versions.node }, 1);
  }

  // ---- the request path -------------------------------------------------------------------------------------------

  /** Once per finished exchange (HandlerContext.observe). A Map lookup and a few array writes. */
  requestFinished(ex: Exchange): void {
    const route = ex.route;
    let s = this.#unmatched;
    if (route !== undefined) {
      const found = this.#byRoute.get(route.name);
      s = found !== undefined && found.service === route.service ? found : this.#seriesFor(route.name, route.service);
    }
    s.record(ex.status, ex.durationMs(), ex.bytes);
    if (ex.errorCode !== undefined) this.#errors.inc({ service: s.service, code: ex.errorCode });
  }

  #seriesFor(route: string, service: string): RouteSeries {
    const key = `${route}\n${service}`;
    let s = this.#allSeries.get(key);
    if (!s) {
      s = new RouteSeries(route, service, this.traffic.window(service));
      this.#allSeries.set(key, s);
    }
    this.#byRoute.set(route, s);
    return s;
  }

  // ---- config and reloads -----------------------------------------------------------------------------------------

  /**
   * At start and after each applied reload: drops the series of routes the config no longer has, sets the config
   * gauges. A route's series is created by its first request, as Traefik does: pre-creating zero series for 10 000
   * routes made every scrape 15 MB and the swap of a reload 7-21 ms longer (bench:reload).
   */
  configLoaded(snapshot: RuntimeSnapshot): void {
    const { config } = snapshot;
    // Bounded by the config, not by its history; a request still in flight on the old generation re-creates its
    // series, pruned again by the next reload.
    const serviceOf = new Map(config.routes.map((r) => [r.name, r.service]));
    for (const [key, s] of this.#allSeries) {
      if (s !== this.#unmatched && serviceOf.get(s.route) !== s.service) {
        this.#allSeries.delete(key);
        if (this.#byRoute.get(s.route) === s) this.#byRoute.delete(s.route);
      }
    }
    for (const name of config.services.keys()) this.#knownServices.add(name);
    this.traffic.retain(config.services.keys());
    for (const service of this.#replicas.keys()) {
      if (!config.services.has(service)) {
        this.#replicas.delete(service);
        this.#desiredReplicas.remove({ service });
        this.#currentReplicas.remove({ service });
      }
    }
    this.#configVersion.set(snapshot.generation);
    this.#configInfo.reset();
    this.#configInfo.set({ hash: config.hash, file: config.file }, 1);
    this.#configLoadedAt.set(snapshot.loadedAt / 1000);
  }

  /**
   * Once per reload run (coalesced SIGHUPs count once per run, not once per signal); in cluster mode every worker
   * records the outcome the primary announces for the whole cluster.
   */
  reload(outcome: ReloadResult): void {
    this.#reloadsTotal.inc({ result: outcome.result });
    this.#lastReloadOk.set(outcome.result === 'refused' ? 0 : 1);
    this.#reloads.push({
      at: this.#now(), result: outcome.result, generation: outcome.generation,
      hash: outcome.result === 'refused' ? null : outcome.hash,
      message: outcome.result === 'refused' ? outcome.message : null,
      problems: outcome.result === 'refused' ? outcome.problems.length : 0,
    });
  }

  /** Shortly after each reload (prepared, then committed, aborted or refused). */
  reloadTiming(timing: ReloadTiming): void {
    this.#reloadLoopDelay.set(timing.loopDelayMaxMs / 1000);
    this.#reloadDuration.set(timing.totalMs / 1000);
  }

  recentReloads(): readonly ReloadRecord[] {
    return this.#reloads.items();
  }

  // ---- resilience (producers: breakers, health checks, outlier ejection, retries, bulkheads) ------------------------

  breakerState(endpoint: EndpointState, state: BreakerState): void {
    const before = this.health.update(endpoint, { breaker: state }, this.#now());
    if (before.breaker !== state) this.#breakerTransitions.inc({ service: this.#service(endpoint.service), state });
  }

  endpointHealth(endpoint: EndpointState, health: HealthState): void {
    const before = this.health.update(endpoint, { health }, this.#now());
    if (before.health !== health) this.#healthTransitions.inc({ service: this.#service(endpoint.service), health });
  }

  /** `ejected: true` takes the endpoint out of balancing (counted once per ejection), false brings it back. */
  ejection(endpoint: EndpointState, ejected: boolean, reason = 'outlier'): void {
    const before = this.health.update(endpoint, { ejected }, this.#now());
    if (ejected && !before.ejected) this.#ejections.inc({ service: this.#service(endpoint.service), reason: boundedReason(reason) });
  }

  /** One retried attempt; `reason` is a short fixed word such as connect-error, reset, timeout, status-503. */
  retry(service: string, reason: string): void {
    this.#retries.inc({ service: this.#service(service), reason: boundedReason(reason) });
  }

  retryBudgetExhausted(service: string): void {
    this.#budgetExhausted.inc({ service: this.#service(service) });
  }

  bulkheadRejected(service: string): void {
    this.#bulkheadRejections.inc({ service: this.#service(service) });
  }

  // ---- scaling ------------------------------------------------------------------------------------------------------

  scalingDecision(d: ScalingDecision): void {
    const direction = d.desired > d.current ? 'up' : d.desired < d.current ? 'down' : 'hold';
    const service = this.#service(d.service);
    this.#decisionsTotal.inc({ service, direction });
    this.#decisions.push({ ...d, service, direction, at: d.at ?? this.#now() });
  }

  /** The replica counts seen by the scaling loop (call it every tick, not only on a change). */
  replicas(service: string, desired: number, current: number): void {
    const name = this.#service(service);
    this.#desiredReplicas.set({ service: name }, desired);
    this.#currentReplicas.set({ service: name }, current);
    this.#replicas.set(name, { service: name, desired, current, at: this.#now() });
    if (name !== UNKNOWN_SERVICE) this.traffic.window(name).replicas(desired, current);
  }

  recentScalingDecisions(): readonly ScalingDecisionRecord[] {
    return this.#decisions.items();
  }

  replicaCounts(): readonly ReplicaCounts[] {
    return [...this.#replicas.values()];
  }

  // ---- exposition ---------------------------------------------------------------------------------------------------

  /** The Prometheus text exposition, in chunks: the per-route families, the gateway's other metrics, the process's. */
  expose(): Exposition {
    const registries = async () => `${await this.registry.metrics()}${await processMetrics().metrics()}`;
    return { contentType: this.registry.contentType, chunks: exposition([...this.#allSeries.values()], new SliceClock(), registries) };
  }

  /** This process's numbers, for a cluster worker to send; mergeMetrics (cluster-metrics.ts) sums them. */
  async snapshot(): Promise<MetricsSnapshot> {
    const [own, proc] = await Promise.all([this.registry.getMetricsAsJSON(), processMetrics().getMetricsAsJSON()]);
    const series = [...this.#allSeries.values()];
    const values = new Float64Array(series.length * SERIES_WIDTH);
    series.forEach((s, i) => s.writeTo(values, i * SERIES_WIDTH));
    return { routes: { keys: series.map((s) => `${s.route}\n${s.service}`), values }, metrics: [...own, ...proc] };
  }

  /** Every metric name exported, process metrics included (for the documentation test). */
  names(): string[] {
    return [...ROUTE_FAMILIES, ...this.registry.getMetricsAsArray(), ...processMetrics().getMetricsAsArray()].map((m) => m.name);
  }

  #service(name: string): string {
    return this.#knownServices.has(name) ? name : UNKNOWN_SERVICE;
  }

  #liveServices(): Map<string, readonly EndpointState[]> {
    const out = new Map<string, readonly EndpointState[]>();
    for (const [name, s] of this.#current()?.services ?? []) out.set(name, s.pool.endpoints);
    return out;
  }

  #liveEndpoints(): EndpointState[] {
    return [...this.#liveServices().values()].flat();
  }

  #pools() {
    return [...(this.#current()?.services ?? [])].map(([name, s]) => [name, s.pool] as const);
  }
}
