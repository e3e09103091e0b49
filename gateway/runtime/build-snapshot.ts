import { BlockList, isIP } from 'node:net';
import type { Logger } from 'pino';
import { createBalancer } from '../balancing/balancer.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import { buildServicePolicy, type ServiceRuntime } from '../resilience/service-policy.js';
import { EndpointSelector } from '../resilience/endpoint-selector.js';
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
export async function buildSnapshot(config: GatewayConfig, generation: number, pools: PoolManager, log: Logger, timer?: ReloadTimer): Promise<RuntimeSnapshot> {
  // In slices: the routing table of a large file is the biggest piece of a reload (Router.build says why).
  const router = await Router.build(config.routes, new SliceClock());
  const services = new Map<string, ServiceRuntime>();
  try {
    for (const s of config.services.values()) {
      const pool = pools.acquire(s, config.plugins);
      const selector = new EndpointSelector(pool, createBalancer(s.balancer, { slowStartMs: s.slowStartMs }), s);
      services.set(s.name, { config: s, pool, selector, policy: buildServicePolicy(s) });
    }
  } catch (err) {
    await Promise.all([...services.values()].map((r) => pools.release(r.config)));
    throw err;
  }
  const trustedProxies = buildBlockList(config.server.trustedProxies);
  timer?.lap('build');
  await Promise.all([...services.values()].map(async ({ config: s, pool }) => {
    if (!(await waitOrTimeout(pool.ready, s.warmTimeoutMs))) {
      log.warn({ service: s.name, warmTimeoutMs: s.warmTimeoutMs }, 'no endpoints from discovery yet; the service answers 503 until they arrive');
    }
  }));
  timer?.lap('warm');
  return { generation, config, loadedAt: Date.now(), router, services, trustedProxies };
}

/** The snapshot was swapped in: its services' endpoint settings, discovery weights and health checks take effect. */
export function commitSnapshot(snapshot: RuntimeSnapshot, pools: PoolManager): void {
  pools.commit(snapshot.config.services.values());
}

export async function releaseSnapshot(snapshot: RuntimeSnapshot, pools: PoolManager): Promise<void> {
  await Promise.all([...snapshot.config.services.values()].map((s) => pools.release(s)));
}
