/**
 * What recording one finished request costs, in nanoseconds, three ways:
 *   - GatewayMetrics.requestFinished (plain numbers, formatted at scrape time; what the gateway does),
 *   - prom-client children cached per route (`counter.labels(...)` / `histogram.labels(...)` made once, used per request),
 *   - prom-client with a labels object per call (the naive way).
 * Run: npm run build && node dist/bench/metrics-hot-path.js
 */
import { performance } from 'node:perf_hooks';
import { Counter, Histogram, Registry } from 'prom-client';
import { GatewayMetrics } from '../gateway/admin/metrics.js';
import { LATENCY_BOUNDS_S } from '../gateway/admin/request-series.js';
import type { RuntimeSnapshot } from '../gateway/runtime/runtime-snapshot.js';

const ROUTES = Array.from({ length: 10 }, (_, i) => ({ name: `route-${i}`, service: `svc-${i % 3}` }));
const STATUSES = [200, 200, 200, 200, 201, 204, 304, 404, 500, 503];
const N = 2_000_000;

const exchanges = Array.from({ length: 1024 }, (_, i) => {
  const durationMs = 0.3 + ((i * 7919) % 1000) / 10;
  return { route: ROUTES[i % ROUTES.length], status: STATUSES[i % STATUSES.length]!, bytes: 512, errorCode: undefined, durationMs: () => durationMs };
});

const snapshot = {
  generation: 1, loadedAt: Date.now(),
  config: { file: 'bench.yaml', hash: 'x', routes: ROUTES, services: new Map(['svc-0', 'svc-1', 'svc-2'].map((n) => [n, { name: n }])) },
  services: new Map(),
} as unknown as RuntimeSnapshot;

function time(label: string, record: (ex: (typeof exchanges)[number]) => void): number {
  for (let i = 0; i < 200_000; i++) record(exchanges[i & 1023]!);   // warm up (JIT)
  const start = performance.now();
  for (let i = 0; i < N; i++) record(exchanges[i & 1023]!);
  const ns = ((performance.now() - start) * 1e6) / N;
  process.stdout.write(`${label.padEnd(58)} ${ns.toFixed(1).padStart(7)} ns/request\n`);
  return ns;
}

const metrics = new GatewayMetrics({ current: () => snapshot, version: 'bench' });
metrics.configLoaded(snapshot);

const registry = new Registry();
const counter = new Counter({ name: 'c', help: 'c', labelNames: ['route', 'service', 'status_class'], registers: [registry] });
const histogram = new Histogram({ name: 'h', help: 'h', labelNames: ['route', 'service'], buckets: [...LATENCY_BOUNDS_S], registers: [registry] });
const classes = ['1xx', '2xx', '3xx', '4xx', '5xx'];
const children = new Map(ROUTES.map((r) => [r.name, {
  byClass: classes.map((cls) => counter.labels(r.name, r.service, cls)),
  latency: histogram.labels(r.name, r.service),
}]));

const results = {
  empty: time('baseline: the loop alone', (ex) => { if (ex.status < 0) throw new Error(); }),
  gateway: time('GatewayMetrics.requestFinished (plain numbers)', (ex) => metrics.requestFinished(ex as never)),
  children: time('prom-client children cached per route', (ex) => {
    const c = children.get(ex.route!.name)!;
    c.byClass[((ex.status / 100) | 0) - 1]!.inc();
    c.latency.observe(ex.durationMs() / 1000);
  }),
  naive: time('prom-client with a labels object per call', (ex) => {
    counter.inc({ route: ex.route!.name, service: ex.route!.service, status_class: classes[((ex.status / 100) | 0) - 1]! });
    histogram.observe({ route: ex.route!.name, service: ex.route!.service }, ex.durationMs() / 1000);
  }),
};
process.stdout.write(`${JSON.stringify(results)}\n`);
