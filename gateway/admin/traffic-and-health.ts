import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { BreakerState } from '../resilience/circuit-breaker.js';
import type { EndpointHealthReport } from './endpoint-health-board.js';
import { gatewayErrorCounts, type GatewayErrorCount } from './gateway-error-window.js';
import type { GatewayMetrics } from './metrics.js';
import type { PolicyTally } from './policy-metrics.js';
import { TrafficWindow, type TrafficPoint, type TrafficSummary, type TrafficWindowData } from './traffic-window.js';

export interface EndpointStatus extends EndpointHealthReport {
  readonly inFlight: number;
}

/**
 * What /admin/services and /admin/stats (the dashboard) show that each process counts for itself: each service's
 * traffic window and each endpoint's in-flight count and health. One process's own (localTrafficAndHealth), or with
 * --workers the whole cluster's (mergedTrafficAndHealth), so the dashboard does not flip between workers' numbers.
 */
export interface TrafficAndHealth {
  traffic(service: string): { summary(windowMs: number): TrafficSummary; points(sinceMs: number): TrafficPoint[] };
  endpoint(service: string, endpoint: EndpointState): EndpointStatus;
  /** Each policy's allowed and refused counts (gantry_policy_allowed_total and _refused_total), summed over workers. */
  policies(): readonly PolicyTally[];
  /** The answers the gateway made itself over the traffic window, by error code, summed over workers. */
  gatewayErrors(): readonly GatewayErrorCount[];
}

export function localTrafficAndHealth(metrics: GatewayMetrics): TrafficAndHealth {
  return {
    traffic: (service) => metrics.traffic.window(service),
    endpoint: (_service, e) => ({ ...metrics.upstreams.health.get(e), inFlight: e.inFlight }),
    policies: () => metrics.policies.tallies(),
    gatewayErrors: () => gatewayErrorCounts([metrics.gatewayErrors.totals()]),
  };
}

/** One worker's traffic and health, sent over the cluster's IPC, for the services of the config it serves. */
export interface TrafficAndHealthSnapshot {
  readonly bucketMs: number;
  readonly size: number;
  readonly traffic: readonly (readonly [service: string, TrafficWindowData])[];
  readonly endpoints: readonly (readonly [service: string, address: string, EndpointStatus])[];
  readonly policies: readonly PolicyTally[];
  /** GatewayErrorWindow.totals(): each error code's count over the window. */
  readonly gatewayErrors: Uint32Array;
}

export function snapshotTrafficAndHealth(s: RuntimeSnapshot, metrics: GatewayMetrics): TrafficAndHealthSnapshot {
  const local = localTrafficAndHealth(metrics);
  return {
    bucketMs: metrics.traffic.bucketMs,
    size: metrics.traffic.size,
    traffic: [...s.services.keys()].map((name) => [name, metrics.traffic.window(name).data()] as const),
    endpoints: [...s.services.values()].flatMap(({ config, pool }) => pool.endpoints.map((e) => [config.name, e.address, local.endpoint(config.name, e)] as const)),
    policies: metrics.policies.tallies(),
    gatewayErrors: metrics.gatewayErrors.totals(),
  };
}

function listIn<T>(map: Map<string, T[]>, key: string): T[] {
  let list = map.get(key);
  if (list === undefined) map.set(key, list = []);
  return list;
}

// Worst last: an open breaker is further from closed than a half-open one, which is already probing.
const BREAKER_RANK: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2, isolated: 3 };

/**
 * The cluster's traffic and health: traffic, policy decisions and the gateway's own answers summed (traffic bucket by bucket); per endpoint the in-flight counts summed, and its
 * health as the worst any worker sees (unhealthy, ejected, the breaker state furthest from closed: each worker has
 * its own checks and breakers), the latency EWMA averaged over the workers that measured it.
 */
export function mergedTrafficAndHealth(snapshots: readonly TrafficAndHealthSnapshot[], fallback: GatewayMetrics): TrafficAndHealth {
  const bucketMs = snapshots[0]?.bucketMs ?? fallback.traffic.bucketMs;
  const size = snapshots[0]?.size ?? fallback.traffic.size;
  const windows = new Map<string, TrafficWindowData[]>();
  const endpoints = new Map<string, EndpointStatus[]>();
  for (const snapshot of snapshots) {
    for (const [service, data] of snapshot.traffic) listIn(windows, service).push(data);
    for (const [service, address, status] of snapshot.endpoints) listIn(endpoints, `${service}\n${address}`).push(status);
  }
  const merged = new Map<string, TrafficWindow>();
  const local = localTrafficAndHealth(fallback);
  const policies = new Map<string, PolicyTally>();
  for (const snapshot of snapshots) {
    for (const t of snapshot.policies) {
      const key = `${t.policy}\n${t.kind}`;
      const sum = policies.get(key);
      if (sum === undefined) { policies.set(key, { policy: t.policy, kind: t.kind, allowed: t.allowed, refused: { ...t.refused } }); continue; }
      sum.allowed += t.allowed;
      for (const [reason, n] of Object.entries(t.refused)) sum.refused[reason] = (sum.refused[reason] ?? 0) + n;
    }
  }
  const gatewayErrors = gatewayErrorCounts(snapshots.map((s) => s.gatewayErrors));
  return {
    policies: () => [...policies.values()],
    gatewayErrors: () => gatewayErrors,
    traffic(service) {
      let w = merged.get(service);
      if (w === undefined) merged.set(service, w = TrafficWindow.merged(windows.get(service) ?? [], bucketMs, size));
      return w;
    },
    endpoint(service, e) {
      const all = endpoints.get(`${service}\n${e.address}`);
      if (!all?.length) return local.endpoint(service, e);
      const ewmas = all.flatMap((f) => (f.ewmaMs === null ? [] : [f.ewmaMs]));
      return {
        inFlight: all.reduce((n, f) => n + f.inFlight, 0),
        health: all.some((f) => f.health === 'unhealthy') ? 'unhealthy' : 'healthy',
        breaker: all.reduce((worst, f) => (BREAKER_RANK[f.breaker] > BREAKER_RANK[worst] ? f.breaker : worst), all[0]!.breaker),
        ejected: all.some((f) => f.ejected),
        ewmaMs: ewmas.length ? Math.round((ewmas.reduce((a, b) => a + b, 0) / ewmas.length) * 100) / 100 : null,
        changedAt: all.reduce<number | null>((latest, f) => (f.changedAt !== null && (latest === null || f.changedAt > latest) ? f.changedAt : latest), null),
      };
    },
  };
}
