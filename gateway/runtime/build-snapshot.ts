import type { IncomingMessage } from 'node:http';
import { dirname, resolve } from 'node:path';
import { BlockList, isIP } from 'node:net';
import type { Logger } from 'pino';
import { createBalancer } from '../balancing/balancer.js';
import type { GatewayConfig, RouteConfig } from '../config/gateway-config.js';
import { buildServicePolicy, type ServiceRuntime } from '../resilience/service-policy.js';
import { EndpointSelector } from '../resilience/endpoint-selector.js';
import { clientAddress } from '../policies/client-address.js';
import { PolicyChain } from '../policies/policy-chain.js';
import { policyKind } from '../policies/policy-kinds.js';
import type { Policy, PolicyRuntime } from '../policies/policy.js';
import { Router } from '../routing/router.js';
import type { PoolManager } from '../upstream/pool-manager.js';
import type { ReloadTimer } from './reload-timer.js';
import type { RuntimeSnapshot } from './runtime-snapshot.js';
import { SliceClock } from './slice-clock.js';

function buildBlockList(entries: readonly string[]): BlockList | null {
  if (!entries.length) return null;
  const list = new BlockList();
  for (const entry of entries) {
    const [ip, bits] = entry.split('/') as [string, string | undefined];
    const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, type); else list.addSubnet(ip, Number(bits), type);
  }
  return list;
}

function waitOrTimeout(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, ms, false); });
  return Promise.race([promise.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Builds a snapshot and warms it: new services get their first endpoints (up to warmTimeoutMs) before the snapshot
 * can take traffic. Pools are acquired from the manager; `releaseSnapshot` gives them back. Nothing the serving
 * snapshot uses changes until `commitSnapshot`, so a snapshot that is released unused leaves it as it was.
 */
export async function buildSnapshot(config: GatewayConfig, generation: number, pools: PoolManager, policyRuntime: PolicyRuntime, log: Logger, timer?: ReloadTimer): Promise<RuntimeSnapshot> {
  const trustedProxies = buildBlockList(config.server.trustedProxies);
  // Filled below, after the policies: a mirror reads it per request, never while it is built.
  const services = new Map<string, ServiceRuntime>();
  const policies = await buildPolicies(config, policyRuntime, trustedProxies, () => services);
  const chainOf = (route: RouteConfig): PolicyChain | null => (route.policies.length === 0 ? null
    : new PolicyChain(route.policies.map((name) => (policies.get(name) as Policy).forRoute(route.name)), policyRuntime.events, log));
  // In slices: the routing table of a large file is the biggest piece of a reload (Router.build says why).
  const router = await Router.build(config.routes, new SliceClock(), chainOf);
  try {
    for (const s of config.services.values()) {
      const pool = pools.acquire(s, config.plugins);
      const selector = new EndpointSelector(pool, createBalancer(s.balancer, { slowStartMs: s.slowStartMs }), s);
      services.set(s.name, { config: s, pool, selector, policy: buildServicePolicy(s) });
    }
  } catch (err) {
    await Promise.all([...services.values()].map((r) => pools.release(r.config)));
    await closePolicies(policies);
    throw err;
  }
  timer?.lap('build');
  await Promise.all([...services.values()].map(async ({ config: s, pool }) => {
    if (!(await waitOrTimeout(pool.ready, s.warmTimeoutMs))) {
      log.warn({ service: s.name, warmTimeoutMs: s.warmTimeoutMs }, 'no endpoints from discovery yet; the service answers 503 until they arrive');
    }
  }));
  timer?.lap('warm');
  return { generation, config, loadedAt: Date.now(), router, services, trustedProxies, policies };
}

/** Each named policy built once for this config (kinds that need a library import it now, on first use). */
async function buildPolicies(config: GatewayConfig, runtime: PolicyRuntime, trustedProxies: BlockList | null, services: () => ReadonlyMap<string, ServiceRuntime>): Promise<Map<string, Policy>> {
  const built = new Map<string, Policy>();
  const ctx = { runtime, clientAddress: (req: IncomingMessage) => clientAddress(req, trustedProxies), rateLimitStore: config.rateLimitStore, baseDir: dirname(resolve(config.file)), services };
  try {
    for (const p of config.policies.values()) {
      const kind = policyKind(p.kind, config.plugins);
      if (!kind) throw new Error(`unknown policy kind "${p.kind}"`);   // refused at load: never so
      built.set(p.name, await kind.create(p.name, p.options, ctx));
    }
  } catch (err) {
    await closePolicies(built);
    throw err;
  }
  return built;
}

/** Closes what the policies of a config hold (connections, timers): at release, and for the serving one at shutdown. */
export async function closePolicies(policies: ReadonlyMap<string, Policy>): Promise<void> {
  await Promise.all([...policies.values()].map(async (p) => p.close?.()));
}

/** The snapshot was swapped in: its services' endpoint settings, discovery weights and health checks take effect. */
export function commitSnapshot(snapshot: RuntimeSnapshot, pools: PoolManager): void {
  pools.commit(snapshot.config.services.values());
}

export async function releaseSnapshot(snapshot: RuntimeSnapshot, pools: PoolManager): Promise<void> {
  await Promise.all([...snapshot.config.services.values()].map((s) => pools.release(s)));
  await closePolicies(snapshot.policies);
}
