import { formatProblem } from '../errors.js';
import type { ReloadOutcome } from '../runtime/reloader.js';
import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import { directionOf, type ScalingDecisionRecord } from '../scaling/decision-history.js';
import type { ScalingView } from '../scaling/scaling-control.js';
import type { ReloadRecord } from './config-metrics.js';
import type { GatewayMetrics } from './metrics.js';
import type { TrafficAndHealth } from './traffic-and-health.js';

/**
 * The JSON bodies of the admin API, built from the serving snapshot and the metrics (docs/admin-api.md shows each).
 * Times for humans are ISO strings; chart points carry epoch milliseconds.
 */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The summary window of /admin/services and the dashboard's service cards. */
const SUMMARY_WINDOW_MS = 60_000;
/** Scaling decisions listed, over all services. */
const DECISIONS_SHOWN = 100;

function reloadView(r: ReloadRecord) {
  // A refusal with problems located in the file is the loader's ConfigError; the others (the file changed meanwhile,
  // the new config could not start) carry only their message.
  const code = r.result === 'refused' && r.problems > 0 ? 'GW_ERR_CONFIG_INVALID' : null;
  return { at: iso(r.at), result: r.result, generation: r.generation, hash: r.hash, code, message: r.message, problems: r.problems };
}

export function configView(s: RuntimeSnapshot, metrics: GatewayMetrics, info: { version: string; startedAt: number }) {
  const reloads = metrics.config.recentReloads();
  return {
    version: s.generation,
    hash: s.config.hash,
    loadedAt: iso(s.loadedAt),
    file: s.config.file,
    routes: s.config.routes.length,
    services: s.config.services.size,
    /** The fleet's name (`fleet:`), null outside a fleet: whether /admin/fleet answers. */
    fleet: s.config.fleet?.name ?? null,
    lastReload: reloads.length ? reloadView(reloads[reloads.length - 1]!) : null,
    gantry: { version: info.version, node: process.versions.node, pid: process.pid, startedAt: iso(info.startedAt) },
  };
}

export function routesView(s: RuntimeSnapshot) {
  return {
    version: s.generation,
    routes: s.config.routes.map((r) => ({
      name: r.name,
      service: r.service,
      split: r.split?.map((side) => ({ service: side.service, weight: side.weight })) ?? null,
      match: {
        hosts: r.match.hosts, path: r.match.path ?? null, exactPath: r.match.exactPath ?? null, pathRegex: r.match.pathRegex ?? null,
        methods: r.match.methods, headers: Object.keys(r.match.headers),
      },
      stripPrefix: r.stripPrefix,
      replacePrefix: r.replacePrefix ?? null,
      websocket: r.websocket,
      timeoutMs: r.timeoutMs,
      maxBodyBytes: r.maxBodyBytes,
    })),
  };
}

export function servicesView(s: RuntimeSnapshot, live: TrafficAndHealth) {
  const routesOf = new Map<string, string[]>();
  for (const r of s.config.routes) {
    for (const { service } of r.split ?? [r]) routesOf.set(service, [...(routesOf.get(service) ?? []), r.name]);
  }
  return {
    version: s.generation,
    services: [...s.services.values()].map(({ config: c, pool }) => {
      const status = pool.status;
      const traffic = live.traffic(c.name).summary(SUMMARY_WINDOW_MS);
      const endpoints = pool.endpoints.map((e) => [e, live.endpoint(c.name, e)] as const);
      return {
        name: c.name,
        routes: routesOf.get(c.name) ?? [],
        balancer: c.balancer,
        timeoutMs: c.timeoutMs,
        discovery: { type: c.discovery.type, up: status.up, lastSuccessAt: iso(status.lastSuccessAt), lastError: status.lastError },
        inFlight: endpoints.reduce((n, [, f]) => n + f.inFlight, 0),
        traffic,
        endpoints: endpoints.map(([e, f]) => ({
          address: e.address, weight: e.weight, inFlight: f.inFlight,
          health: f.health, breaker: f.breaker, ejected: f.ejected, ewmaMs: f.ewmaMs, changedAt: iso(f.changedAt),
        })),
      };
    }),
  };
}

export function scalingView(metrics: GatewayMetrics, scaling: ScalingView) {
  return {
    services: metrics.scaling.replicaCounts().map((r) => ({ service: r.service, desired: r.desired, current: r.current, at: iso(r.at) })),
    decisions: scaling.recentDecisions().slice(-DECISIONS_SHOWN).map(decisionView).reverse(),
  };
}

function decisionView(d: ScalingDecisionRecord) {
  return {
    at: iso(d.at), service: d.service, current: d.current, desired: d.desired, direction: directionOf(d),
    reason: d.error === undefined ? d.reason : `${d.reason} (failed: ${d.error})`,
  };
}

export function statsView(s: RuntimeSnapshot, metrics: GatewayMetrics, scaling: ScalingView, live: TrafficAndHealth, clock: { nowMs: number; startedAt: number }) {
  const services: Record<string, unknown> = {};
  for (const name of s.services.keys()) {
    const w = live.traffic(name);
    services[name] = { summary: w.summary(SUMMARY_WINDOW_MS), points: w.points(clock.startedAt) };
  }
  // A scaling loop decides every few seconds and most decisions hold: listed with the moves, a minute of holds
  // pushed the last real move out of the list. The moves are listed; the holds are counted.
  const decisions = scaling.recentDecisions();
  const moves = decisions.filter((d) => d.desired !== d.current);
  return {
    now: clock.nowMs,
    startedAt: clock.startedAt,
    bucketMs: metrics.traffic.bucketMs,
    windowMs: metrics.traffic.bucketMs * metrics.traffic.size,
    services,
    gatewayErrors: live.gatewayErrors(),
    reloads: metrics.config.recentReloads().map(reloadView).reverse(),
    scaling: moves.slice(-DECISIONS_SHOWN).map(decisionView).reverse(),
    scalingHolds: { count: decisions.length - moves.length, lastAt: iso(decisions.findLast((d) => d.desired === d.current)?.at ?? null) },
    policies: policiesView(s, live),
  };
}

/** The serving config's policies, each with the routes that list it and its decisions since the start. */
function policiesView(s: RuntimeSnapshot, live: TrafficAndHealth) {
  const tallies = new Map(live.policies().map((t) => [`${t.policy}\n${t.kind}`, t]));
  return [...s.config.policies.values()].map((p) => {
    const t = tallies.get(`${p.name}\n${p.kind}`);
    return {
      name: p.name, kind: p.kind,
      routes: s.config.routes.filter((r) => r.policies.includes(p.name)).map((r) => r.name),
      allowed: t?.allowed ?? 0,
      refused: Object.values(t?.refused ?? {}).reduce((a, b) => a + b, 0),
      reasons: t?.refused ?? {},
    };
  });
}

/** POST /admin/reload: 200 with what changed, or 422 with every problem (the old config keeps serving). */
export function reloadResultView(outcome: ReloadOutcome): { status: number; body: unknown } {
  if (outcome.result !== 'refused') return { status: 200, body: outcome };
  return {
    status: 422,
    body: {
      result: 'refused', generation: outcome.generation, message: outcome.message,
      problems: outcome.problems.map((p) => ({ ...p, text: formatProblem(p) })),
    },
  };
}
