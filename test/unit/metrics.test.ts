import t from 'tap';
import { AttemptFailure } from '../../gateway/resilience/attempt-failure.js';
import { GatewayMetrics } from '../../gateway/admin/metrics.js';
import { exposedText } from '../../gateway/admin/request-series.js';
import type { RuntimeSnapshot } from '../../gateway/runtime/runtime-snapshot.js';
import type { ScalingDecisionRecord } from '../../gateway/scaling/decision-history.js';
import { EndpointState } from '../../gateway/upstream/endpoint-state.js';
import type { DiscoveryStatus } from '../../gateway/upstream/upstream-pool.js';
import { parsePromText, promTypes, sampleValue, type PromSample } from '../helpers/prom-text.js';

const SETTINGS = { maxSockets: 1, idleTimeoutMs: 1000, connectTimeoutMs: 1000, breaker: { enabled: false, consecutiveFailures: 5, halfOpenAfterMs: 1000, maxHalfOpenAfterMs: 1000 }, protocol: 'http1' as const, tls: null };

interface FakeService { endpoints: EndpointState[]; status: DiscoveryStatus }

/** A snapshot with just what the metrics read: routes, services, their pools' endpoints and discovery status. */
function snapshot(generation: number, routes: [name: string, service: string][], services: Record<string, FakeService>, hash = `hash-${generation}`): RuntimeSnapshot {
  return {
    generation, loadedAt: 1_700_000_000_000 + generation * 1000, router: undefined, trustedProxies: null,
    config: {
      file: '/etc/gantry/routes.yaml', hash, routes: routes.map(([name, service]) => ({ name, service })),
      services: new Map(Object.keys(services).map((n) => [n, { name: n }])),
    },
    services: new Map(Object.entries(services).map(([n, s]) => [n, { config: { name: n }, pool: { endpoints: s.endpoints, status: s.status }, balancer: undefined }])),
  } as unknown as RuntimeSnapshot;
}

function exchange(route: [string, string] | undefined, status: number, durationMs: number, bytes = 10, errorCode?: string) {
  return {
    route: route && { name: route[0], service: route[1] }, status, bytes, errorCode, durationMs: () => durationMs,
    http2: false, req: { httpVersionMinor: 1, socket: { encrypted: false } },
  } as never;
}

/** A decision of the scaling loop with what the metrics read of it. */
function decision(d: Partial<ScalingDecisionRecord>): ScalingDecisionRecord {
  return { service: 'users', at: 1_700_000_100_000, reason: 'demand', ...d } as ScalingDecisionRecord;
}

const up: DiscoveryStatus = { up: true, since: 1_700_000_000_000, lastSuccessAt: 1_700_000_000_500, lastError: null, lastErrorAt: null, failures: 0, endpoints: 2 };

function setup() {
  let clock = 1_700_000_100_000;
  const a = new EndpointState('users', 'http://10.0.0.5:8000', 1, SETTINGS);
  const b = new EndpointState('users', 'http://10.0.0.6:8000', 2, SETTINGS);
  let current = snapshot(1, [['api', 'users'], ['admin', 'users']], { users: { endpoints: [a, b], status: up } });
  const metrics = new GatewayMetrics({ current: () => current, version: '9.9.9', now: () => clock });
  metrics.configLoaded(current);
  const scrape = async (): Promise<PromSample[]> => parsePromText(await exposedText(metrics.expose()));
  return {
    metrics, a, b, scrape, tick: (ms: number) => { clock += ms; },
    swap: (s: RuntimeSnapshot) => { current = s; metrics.configLoaded(s); },
    destroy: () => { a.destroy(); b.destroy(); },
  };
}

t.test('requests by route, service and status class; latency histogram; body bytes', async (t) => {
  const { metrics, scrape, destroy } = setup();
  t.teardown(destroy);
  for (const ms of [0.5, 3, 7, 40, 40]) metrics.requests.requestFinished(exchange(['api', 'users'], 200, ms, 100));
  metrics.requests.requestFinished(exchange(['api', 'users'], 503, 2500, 20, 'GW_ERR_NO_ENDPOINT'));
  metrics.requests.requestFinished(exchange(['admin', 'users'], 404, 1));
  metrics.requests.requestFinished(exchange(undefined, 400, 0.2, 5, 'GW_ERR_BAD_PATH'));
  metrics.requests.requestFinished(exchange(['api', 'users'], 0, 12, 0));   // the client left before a response head

  const s = await scrape();
  const total = (route: string, service: string, status_class: string) => sampleValue(s, 'gantry_requests_total', { route, service, status_class });
  t.equal(total('api', 'users', '2xx'), 5);
  t.equal(total('api', 'users', '5xx'), 1);
  t.equal(total('api', 'users', 'aborted'), 1);
  t.equal(total('admin', 'users', '4xx'), 1);
  t.equal(total('_none', '_none', '4xx'), 1, 'requests that matched no route are counted under _none');
  t.equal(total('api', 'users', '3xx'), undefined, 'classes never seen export no series');

  const bucket = (le: string) => sampleValue(s, 'gantry_request_duration_seconds_bucket', { route: 'api', service: 'users', le });
  t.equal(bucket('0.001'), 1);
  t.equal(bucket('0.005'), 2);
  t.equal(bucket('0.01'), 3);
  t.equal(bucket('0.025'), 4, 'the aborted request (12 ms) counts too');
  t.equal(bucket('0.05'), 6);
  t.equal(bucket('1'), 6);
  t.equal(bucket('2.5'), 7, 'a bound is inclusive (le)');
  t.equal(bucket('+Inf'), 7);
  t.equal(sampleValue(s, 'gantry_request_duration_seconds_count', { route: 'api', service: 'users' }), 7);
  t.equal(Math.round(sampleValue(s, 'gantry_request_duration_seconds_sum', { route: 'api', service: 'users' })! * 1e4), Math.round((0.5 + 3 + 7 + 40 + 40 + 2500 + 12) * 10));
  t.equal(sampleValue(s, 'gantry_response_body_bytes_total', { route: 'api', service: 'users' }), 520);
  t.equal(sampleValue(s, 'gantry_errors_total', { service: 'users', code: 'GW_ERR_NO_ENDPOINT' }), 1);
  t.equal(sampleValue(s, 'gantry_errors_total', { service: '_none', code: 'GW_ERR_BAD_PATH' }), 1);
});

t.test('a route exports series from its first request; dropped routes go at the next config', async (t) => {
  const { scrape, swap, metrics, a, destroy } = setup();
  t.teardown(destroy);
  let s = await scrape();
  t.equal(sampleValue(s, 'gantry_request_duration_seconds_count', { route: 'admin', service: 'users' }), undefined, 'no series before traffic');
  metrics.requests.requestFinished(exchange(['admin', 'users'], 200, 1));
  metrics.requests.requestFinished(exchange(['api', 'users'], 200, 1));
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_request_duration_seconds_count', { route: 'admin', service: 'users' }), 1);
  swap(snapshot(2, [['api', 'users']], { users: { endpoints: [a], status: up } }));
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_request_duration_seconds_count', { route: 'admin', service: 'users' }), undefined, 'the dropped route has no series');
  t.equal(sampleValue(s, 'gantry_request_duration_seconds_count', { route: 'api', service: 'users' }), 1, 'a kept route keeps its counts');
  metrics.requests.requestFinished(exchange(['admin', 'users'], 200, 1));   // still in flight on the old config
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_requests_total', { route: 'admin', service: 'users', status_class: '2xx' }), 1, 'a straggler is still counted');
});

t.test('route and service names are escaped in label values; every sample line parses', async (t) => {
  const { scrape, metrics, destroy } = setup();
  t.teardown(destroy);
  metrics.requests.requestFinished(exchange(['we"ird\\name', 'users'], 200, 1));
  const s = await scrape();
  t.equal(sampleValue(s, 'gantry_requests_total', { route: 'we"ird\\name', service: 'users', status_class: '2xx' }), 1);
  const types = promTypes(await exposedText(metrics.expose()));
  t.equal(types.get('gantry_request_duration_seconds'), 'histogram');
  t.equal(types.get('gantry_requests_total'), 'counter');
});

t.test('a route that moves to another service counts under the new service', async (t) => {
  const { scrape, swap, metrics, a, b, destroy } = setup();
  t.teardown(destroy);
  metrics.requests.requestFinished(exchange(['api', 'users'], 200, 1));
  swap(snapshot(2, [['api', 'orders']], { users: { endpoints: [a], status: up }, orders: { endpoints: [b], status: up } }));
  metrics.requests.requestFinished(exchange(['api', 'orders'], 200, 1));
  metrics.requests.requestFinished(exchange(['api', 'users'], 200, 1));   // an old-generation request finishing late
  metrics.requests.requestFinished(exchange(['api', 'orders'], 200, 1));
  const s = await scrape();
  t.equal(sampleValue(s, 'gantry_requests_total', { route: 'api', service: 'orders', status_class: '2xx' }), 2);
  t.equal(sampleValue(s, 'gantry_requests_total', { route: 'api', service: 'users', status_class: '2xx' }), 1);
});

t.test('in-flight, endpoints and discovery status are read from the serving snapshot', async (t) => {
  const { scrape, swap, a, b, destroy } = setup();
  t.teardown(destroy);
  a.inFlight = 3;
  b.inFlight = 1;
  let s = await scrape();
  t.equal(sampleValue(s, 'gantry_requests_in_flight', { service: 'users' }), 4);
  t.equal(sampleValue(s, 'gantry_endpoint_in_flight', { service: 'users', endpoint: 'http://10.0.0.5:8000' }), 3);
  t.equal(sampleValue(s, 'gantry_upstream_endpoints', { service: 'users' }), 2);
  t.equal(sampleValue(s, 'gantry_discovery_up', { service: 'users' }), 1);
  t.equal(sampleValue(s, 'gantry_discovery_last_success_timestamp_seconds', { service: 'users' }), 1_700_000_000.5);

  swap(snapshot(2, [['api', 'users']], { users: { endpoints: [b], status: { up: false, since: 1_700_000_000_000, lastSuccessAt: null, lastError: 'etcd down', lastErrorAt: 1_700_000_000_000, failures: 1, endpoints: 1 } } }));
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_discovery_up', { service: 'users' }), 0);
  t.equal(sampleValue(s, 'gantry_discovery_last_success_timestamp_seconds', { service: 'users' }), undefined);
  t.equal(sampleValue(s, 'gantry_endpoint_in_flight', { service: 'users', endpoint: 'http://10.0.0.5:8000' }), undefined, 'an endpoint discovery dropped has no series');
});

t.test('breaker, health and ejection gauges read the endpoint\'s own state; transitions are counted once', async (t) => {
  const { metrics, scrape, a, b, destroy, tick } = setup();
  t.teardown(destroy);
  let s = await scrape();
  t.equal(sampleValue(s, 'gantry_breaker_state', { endpoint: 'http://10.0.0.5:8000', state: 'closed' }), 1, 'closed by default');
  t.equal(sampleValue(s, 'gantry_endpoint_healthy', { endpoint: 'http://10.0.0.5:8000' }), 1, 'healthy by default');

  // The real state: a's breaker opened by a connect failure, b failing its health checks and ejected.
  a.health.configure({ enabled: true, consecutiveFailures: 1, halfOpenAfterMs: 60_000, maxHalfOpenAfterMs: 60_000 });
  await a.health.breaker!.execute(() => { throw new AttemptFailure('connect', true); }).catch(() => {});
  b.health.setActiveHealthy(false);
  b.health.ejectedUntil = Date.now() + 60_000;
  a.latency.observe(12.5, Date.now());
  // What the registry forwards from those transitions (reported twice: counted once).
  metrics.upstreams.breakerState(a, 'open');
  metrics.upstreams.breakerState(a, 'open');
  tick(1000);
  metrics.upstreams.endpointHealth(b, 'unhealthy');
  metrics.upstreams.ejection(b, true, 'consecutive-5xx');
  metrics.upstreams.ejection(b, true, 'consecutive-5xx');
  metrics.upstreams.ejection(a, true, 'Mozilla/5.0 (evil)');
  s = await scrape();
  t.same(['closed', 'open', 'half-open', 'isolated'].map((state) => sampleValue(s, 'gantry_breaker_state', { endpoint: 'http://10.0.0.5:8000', state })), [0, 1, 0, 0]);
  t.equal(sampleValue(s, 'gantry_breaker_transitions_total', { service: 'users', state: 'open' }), 1);
  t.equal(sampleValue(s, 'gantry_endpoint_healthy', { endpoint: 'http://10.0.0.6:8000' }), 0);
  t.equal(sampleValue(s, 'gantry_endpoint_health_transitions_total', { service: 'users', health: 'unhealthy' }), 1);
  t.equal(sampleValue(s, 'gantry_endpoint_ejected', { endpoint: 'http://10.0.0.6:8000' }), 1);
  t.equal(sampleValue(s, 'gantry_endpoint_ejections_total', { service: 'users', reason: 'consecutive-5xx' }), 1, 'one ejection, however often it is reported');
  t.equal(sampleValue(s, 'gantry_endpoint_ejections_total', { service: 'users', reason: 'other' }), 1, 'a reason that is not a short word becomes other');
  t.match(metrics.upstreams.health.get(a), { breaker: 'open', ewmaMs: Number });

  const isolation = a.health.breaker!.isolate();
  t.equal(metrics.upstreams.health.get(a).breaker, 'isolated');
  isolation.dispose();
  b.health.ejectedUntil = 0;
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_endpoint_ejected', { endpoint: 'http://10.0.0.6:8000' }), 0, 'the ejection ran out');
});

t.test('retries, retry budget and bulkhead counters; unknown services do not create series', async (t) => {
  const { metrics, scrape, destroy } = setup();
  t.teardown(destroy);
  metrics.upstreams.retry('users', 'connect-error');
  metrics.upstreams.retry('users', 'connect-error');
  metrics.upstreams.retry('users', 'timeout');
  metrics.upstreams.retryBudgetExhausted('users');
  metrics.upstreams.bulkheadRejected('users');
  metrics.upstreams.bulkheadRejected('users');
  metrics.upstreams.retry('/etc/passwd', 'connect-error');
  const s = await scrape();
  t.equal(sampleValue(s, 'gantry_retries_total', { service: 'users', reason: 'connect-error' }), 2);
  t.equal(sampleValue(s, 'gantry_retries_total', { service: 'users', reason: 'timeout' }), 1);
  t.equal(sampleValue(s, 'gantry_retry_budget_exhausted_total', { service: 'users' }), 1);
  t.equal(sampleValue(s, 'gantry_bulkhead_rejections_total', { service: 'users' }), 2);
  t.equal(sampleValue(s, 'gantry_retries_total', { service: '_unknown', reason: 'connect-error' }), 1);
});

t.test('reloads by result, the last reload flag, the config version and info', async (t) => {
  const { metrics, scrape, swap, a, destroy } = setup();
  t.teardown(destroy);
  let s = await scrape();
  t.equal(sampleValue(s, 'gantry_config_version'), 1);
  t.equal(sampleValue(s, 'gantry_config_info', { hash: 'hash-1', file: '/etc/gantry/routes.yaml' }), 1);
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'refused' }), 0, 'every result is exported from the start');

  metrics.config.reload({ result: 'refused', generation: 1, problems: [{ file: 'f', line: 1, col: 2, path: 'x', message: 'bad' }], message: 'f:1:2: x: bad' });
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'refused' }), 1);
  t.equal(sampleValue(s, 'gantry_config_last_reload_successful'), 0);

  swap(snapshot(2, [['api', 'users']], { users: { endpoints: [a], status: up } }));
  metrics.config.reload({ result: 'applied', generation: 2, hash: 'hash-2' });
  metrics.config.reload({ result: 'unchanged', generation: 2, hash: 'hash-2' });
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'applied' }), 1);
  t.equal(sampleValue(s, 'gantry_config_reloads_total', { result: 'unchanged' }), 1);
  t.equal(sampleValue(s, 'gantry_config_last_reload_successful'), 1);
  t.equal(sampleValue(s, 'gantry_config_version'), 2);
  t.equal(sampleValue(s, 'gantry_config_info', { hash: 'hash-1' }), undefined, 'the old hash is gone');
  t.equal(sampleValue(s, 'gantry_config_info', { hash: 'hash-2' }), 1);
  t.equal(sampleValue(s, 'gantry_config_loaded_timestamp_seconds'), 1_700_000_002);
  t.same(metrics.config.recentReloads().map((r) => [r.result, r.generation, r.problems]), [['refused', 1, 1], ['applied', 2, 0], ['unchanged', 2, 0]]);
});

t.test('scaling decisions by direction, replicas desired and current', async (t) => {
  const { metrics, scrape, swap, a, destroy, tick } = setup();
  t.teardown(destroy);
  metrics.scaling.scalingDecision(decision({ current: 2, desired: 4, outcome: 'applied' }));
  metrics.scaling.scalingDecision(decision({ current: 4, desired: 4, outcome: 'held' }));
  metrics.scaling.scalingDecision(decision({ current: 4, desired: 6, outcome: 'failed', error: 'timed out' }));
  metrics.scaling.scalingDecision(decision({ service: '/etc/passwd', current: 4, desired: 2, outcome: 'applied' }));
  metrics.scaling.replicas('users', 4, 3);
  let s = await scrape();
  t.equal(sampleValue(s, 'gantry_scaling_decisions_total', { service: 'users', direction: 'up' }), 2, 'a failed decision counts the way it tried');
  t.equal(sampleValue(s, 'gantry_scaling_decisions_total', { service: 'users', direction: 'hold' }), 1);
  t.equal(sampleValue(s, 'gantry_scaling_decisions_total', { service: '_unknown', direction: 'down' }), 1);
  t.equal(sampleValue(s, 'gantry_replicas_desired', { service: 'users' }), 4);
  t.equal(sampleValue(s, 'gantry_replicas_current', { service: 'users' }), 3);
  tick(5000);   // the dashboard's points are complete buckets
  const points = metrics.traffic.window('users').points();
  t.match(points.at(-1), { desiredReplicas: 4, currentReplicas: 3 });

  swap(snapshot(2, [['api', 'orders']], { orders: { endpoints: [a], status: up } }));
  s = await scrape();
  t.equal(sampleValue(s, 'gantry_replicas_desired', { service: 'users' }), undefined, 'a service gone from the config has no replica series');
  t.same(metrics.scaling.replicaCounts(), []);
});

t.test('every family has the documented type, process metrics included', async (t) => {
  const { metrics, destroy } = setup();
  t.teardown(destroy);
  const types = promTypes(await exposedText(metrics.expose()));
  t.equal(types.get('gantry_requests_total'), 'counter');
  t.equal(types.get('gantry_request_duration_seconds'), 'histogram');
  t.equal(types.get('gantry_requests_in_flight'), 'gauge');
  t.equal(types.get('process_cpu_seconds_total'), 'counter');
  t.equal(types.get('nodejs_eventloop_lag_p99_seconds'), 'gauge');
  t.ok(metrics.names().includes('process_resident_memory_bytes'));
  const s = parsePromText(await exposedText(metrics.expose()));
  t.equal(sampleValue(s, 'gantry_build_info', { version: '9.9.9' }), 1);
});
