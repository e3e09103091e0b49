import { Counter, Gauge, type Aggregator, type LabelValues, type Registry } from 'prom-client';
import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import type { EndpointEvents, ResilienceEvents } from '../upstream/endpoint-events.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { BREAKER_STATES, type BreakerState } from '../resilience/circuit-breaker.js';
import { EndpointHealthBoard, type HealthState } from './endpoint-health-board.js';
import { boundedReason, type KnownServices } from './label-values.js';

/**
 * A gauge whose samples are read from the serving snapshot when scraped (prom-client calls `collect` first), so
 * nothing on the request path keeps it up to date.
 */
function collectedGauge<T extends string>(
  registry: Registry, name: string, help: string, labelNames: readonly T[],
  samples: () => Iterable<readonly [LabelValues<T>, number]>,
  /** How a cluster's workers' samples combine (cluster-metrics.ts). */
  aggregator: Aggregator = 'sum',
): void {
  new Gauge<T>({
    name, help, labelNames, aggregator, registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of samples()) this.set(labels, value);
    },
  });
}

/**
 * Upstreams: in-flight, endpoint, health, breaker and discovery gauges read from the serving snapshot when scraped,
 * and the counters that resilience code reports to (breaker, health and ejection transitions, retries, bulkheads).
 */
export class UpstreamMetrics implements EndpointEvents, ResilienceEvents {
  readonly health = new EndpointHealthBoard();
  readonly #breakerTransitions: Counter<'service' | 'state'>;
  readonly #ejections: Counter<'service' | 'reason'>;
  readonly #healthTransitions: Counter<'service' | 'health'>;
  readonly #retries: Counter<'service' | 'reason'>;
  readonly #budgetExhausted: Counter<'service'>;
  readonly #bulkheadRejections: Counter<'service'>;

  constructor(
    registry: Registry,
    /** The snapshot serving now. */
    private readonly current: () => RuntimeSnapshot | undefined,
    private readonly services: KnownServices,
    private readonly now: () => number,
  ) {
    const registers = [registry];
    collectedGauge(registry, 'gantry_requests_in_flight', 'Requests (and WebSocket tunnels) in flight, by service.', ['service'],
      () => this.#pools().map(([service, pool]) => [{ service }, pool.endpoints.reduce((n, e) => n + e.inFlight, 0)] as const));
    collectedGauge(registry, 'gantry_endpoint_in_flight', 'Requests in flight, by endpoint.', ['service', 'endpoint'],
      () => this.#endpoints().map((e) => [{ service: e.service, endpoint: e.address }, e.inFlight] as const));
    collectedGauge(registry, 'gantry_upstream_endpoints', 'Endpoints discovery lists, by service.', ['service'],
      () => this.#pools().map(([service, pool]) => [{ service }, pool.endpoints.length] as const), 'max');
    collectedGauge(registry, 'gantry_endpoint_healthy', '1 when the endpoint is healthy, 0 when a check or outlier detection marked it unhealthy.', ['service', 'endpoint'],
      () => this.#endpoints().map((e) => [{ service: e.service, endpoint: e.address }, this.health.get(e).health === 'healthy' ? 1 : 0] as const), 'min');
    collectedGauge(registry, 'gantry_endpoint_ejected', '1 while the endpoint is ejected from balancing.', ['service', 'endpoint'],
      () => this.#endpoints().map((e) => [{ service: e.service, endpoint: e.address }, this.health.get(e).ejected ? 1 : 0] as const), 'max');
    collectedGauge(registry, 'gantry_breaker_state', 'Circuit breaker state per endpoint: 1 for the current state, 0 for the others.', ['service', 'endpoint', 'state'],
      () => this.#endpoints().flatMap((e) => {
        const now = this.health.get(e).breaker;
        return BREAKER_STATES.map((state) => [{ service: e.service, endpoint: e.address, state }, state === now ? 1 : 0] as const);
      }));
    collectedGauge(registry, 'gantry_discovery_up', '1 when the service\'s discovery source answers, 0 while it is down (the last endpoints are kept).', ['service'],
      () => this.#pools().map(([service, pool]) => [{ service }, pool.status.up ? 1 : 0] as const), 'min');
    collectedGauge(registry, 'gantry_discovery_last_success_timestamp_seconds', 'When discovery last delivered an update, by service (Unix time).', ['service'],
      () => this.#pools().flatMap(([service, pool]) => (pool.status.lastSuccessAt === null ? [] : [[{ service }, pool.status.lastSuccessAt / 1000] as const])), 'max');
    this.#breakerTransitions = new Counter({ name: 'gantry_breaker_transitions_total', help: 'Circuit breaker state changes, by service and the state entered.', labelNames: ['service', 'state'], registers });
    this.#ejections = new Counter({ name: 'gantry_endpoint_ejections_total', help: 'Endpoints ejected from balancing, by service and reason.', labelNames: ['service', 'reason'], registers });
    this.#healthTransitions = new Counter({ name: 'gantry_endpoint_health_transitions_total', help: 'Endpoint health changes, by service and the health entered.', labelNames: ['service', 'health'], registers });
    this.#retries = new Counter({ name: 'gantry_retries_total', help: 'Upstream attempts retried, by service and reason.', labelNames: ['service', 'reason'], registers });
    this.#budgetExhausted = new Counter({ name: 'gantry_retry_budget_exhausted_total', help: 'Retries not made because the service\'s retry budget was spent.', labelNames: ['service'], registers });
    this.#bulkheadRejections = new Counter({ name: 'gantry_bulkhead_rejections_total', help: 'Requests refused because the service\'s concurrency limit (bulkhead) was full.', labelNames: ['service'], registers });
  }

  // Producers: breakers, health checks and outlier ejection (EndpointEvents, on transitions), retries and bulkheads.

  breakerState(endpoint: EndpointState, state: BreakerState): void {
    if (this.health.report(endpoint, { breaker: state }, this.now())) this.#breakerTransitions.inc({ service: this.services.label(endpoint.service), state });
  }

  endpointHealth(endpoint: EndpointState, health: HealthState): void {
    if (this.health.report(endpoint, { health }, this.now())) this.#healthTransitions.inc({ service: this.services.label(endpoint.service), health });
  }

  /** `ejected: true` takes the endpoint out of balancing (counted once per ejection), false brings it back. */
  ejection(endpoint: EndpointState, ejected: boolean, reason = 'outlier'): void {
    if (this.health.report(endpoint, { ejected }, this.now()) && ejected) this.#ejections.inc({ service: this.services.label(endpoint.service), reason: boundedReason(reason) });
  }

  /** One retried attempt; `reason` is a short fixed word such as connect-error, reset, timeout, status-503. */
  retry(service: string, reason: string): void {
    this.#retries.inc({ service: this.services.label(service), reason: boundedReason(reason) });
  }

  retryBudgetExhausted(service: string): void {
    this.#budgetExhausted.inc({ service: this.services.label(service) });
  }

  bulkheadRejected(service: string): void {
    this.#bulkheadRejections.inc({ service: this.services.label(service) });
  }

  #pools() {
    return [...(this.current()?.services ?? [])].map(([name, s]) => [name, s.pool] as const);
  }

  #endpoints(): EndpointState[] {
    return this.#pools().flatMap(([, pool]) => pool.endpoints);
  }
}
