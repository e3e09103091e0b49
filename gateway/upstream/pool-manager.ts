import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/gateway-config.js';
import { stableStringify } from '../config/stable-stringify.js';
import type { Discovery } from '../plugin-api/discovery.js';
import { pluginContext } from '../plugin-api/plugin-context.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { HealthChecker } from '../resilience/health-check.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import type { EndpointSettings } from './endpoint-state.js';
import { UpstreamPool } from './upstream-pool.js';

interface Entry { pool: UpstreamPool; refs: number; abort: AbortController }
/** A served service's active health checks, over the endpoints of its serving pool (no checker: another process probes). */
interface Checks { checker: HealthChecker | null; key: string; pool: UpstreamPool }

function settingsOf(s: ServiceConfig): EndpointSettings {
  return {
    maxSockets: s.maxSocketsPerEndpoint, idleTimeoutMs: s.idleSocketTimeoutMs, connectTimeoutMs: s.connectTimeoutMs, breaker: s.circuitBreaker,
    protocol: s.protocol, tls: s.tls,
  };
}

/**
 * Owns the discovery watches. Snapshots acquire a pool per service and release it when retired; a pool whose key
 * (service name + discovery type and options) is unchanged by a reload is shared, so its watch and endpoints carry on.
 *
 * Acquiring changes nothing that serves: a config's endpoint settings (sockets, breaker), its sources' weights and
 * its health checks take effect at `commit`, so a prepared config that is thrown away leaves no trace.
 *
 * With `probe` false (a cluster worker) the health checks are the primary's: it sends their verdicts to the
 * registry's HealthVerdicts, and this manager only withdraws them where the serving config stops checking.
 */
export class PoolManager {
  readonly #entries = new Map<string, Entry>();
  /** The serving config's services, and the health checks of those that have them. */
  #served = new Set<string>();
  readonly #checks = new Map<string, Checks>();

  constructor(
    private readonly plugins: PluginRegistry,
    private readonly registry: EndpointRegistry,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** Discovery for services whose endpoints come from their scaler (`discovery: { type: scaler }`). */
    private readonly scalerEndpoints?: (s: ServiceConfig) => Discovery | undefined,
    private readonly probe = true,
  ) {}

  static keyOf(s: ServiceConfig): string {
    return `${s.name}\n${s.discovery.key}`;
  }

  /** `plugins`: the registry the service's config was validated against (it may hold third-party plugins). */
  acquire(s: ServiceConfig, plugins: PluginRegistry = this.plugins): UpstreamPool {
    const key = PoolManager.keyOf(s);
    const found = this.#entries.get(key);
    if (found) {
      found.refs++;
      return found.pool;
    }
    const plugin = plugins.discovery(s.discovery.type);
    const fromScaler = this.scalerEndpoints?.(s);
    if (!plugin && !fromScaler) throw new Error(`unknown discovery type ${s.discovery.type}`);   // the loader already refused it
    const abort = new AbortController();
    const log = this.log.child({ plugin: s.discovery.type, service: s.name });
    const discovery = fromScaler ?? plugin!.create(s.discovery.options, pluginContext(log, abort.signal, this.now, s.discovery.baseDir));
    const pool = new UpstreamPool({ service: s.name, discovery, registry: this.registry, settings: settingsOf(s), log, now: this.now, serving: false });
    this.#entries.set(key, { pool, refs: 1, abort });
    pool.start();
    return pool;
  }

  /**
   * `services` (each acquired) are now the serving config's: every endpoint of each takes its settings, its pool
   * serves (its weights), its health checks run over that pool; every other pool stops serving, and the health checks
   * of services it no longer has stop.
   */
  commit(services: Iterable<ServiceConfig>): void {
    const serving = new Set<UpstreamPool>();
    const served = new Set<string>();
    for (const s of services) {
      const pool = this.#entries.get(PoolManager.keyOf(s))!.pool;
      serving.add(pool);
      served.add(s.name);
      this.registry.configure(s.name, settingsOf(s));
      this.#checkHealth(s, pool);
    }
    for (const { pool } of this.#entries.values()) pool.serve(serving.has(pool));
    for (const name of this.#served) {
      if (served.has(name)) continue;
      this.registry.configure(name, null);
      if (this.#checks.has(name)) this.#stopChecks(name);
    }
    this.#served = served;
  }

  /** Starts, moves to the serving pool, restarts (settings changed) or stops the active health checks of `s`. */
  #checkHealth(s: ServiceConfig, pool: UpstreamPool): void {
    const key = stableStringify(s.healthCheck);
    const checks = this.#checks.get(s.name);
    if (checks?.key === key) { checks.pool = pool; return; }
    if (checks) this.#stopChecks(s.name);
    if (s.healthCheck === null) return;
    if (!this.probe) { this.#checks.set(s.name, { checker: null, key, pool }); return; }
    const checker = new HealthChecker(() => next.pool.endpoints, s.healthCheck, this.registry.verdicts, this.log.child({ service: s.name }));
    const next: Checks = { checker, key, pool };
    this.#checks.set(s.name, next);
    checker.start();
  }

  #stopChecks(service: string): void {
    this.#checks.get(service)?.checker?.stop();
    this.#checks.delete(service);
    // Unchecked, every endpoint of the service is back in rotation, whichever pool listed it when it was checked.
    this.registry.verdicts.clear(service, 'health checks stopped');
    for (const e of this.registry.endpointsOf(service)) e.health.activeStreak = 0;
  }

  async release(s: ServiceConfig): Promise<void> {
    const key = PoolManager.keyOf(s);
    const entry = this.#entries.get(key);
    if (!entry || --entry.refs > 0) return;
    this.#entries.delete(key);
    entry.abort.abort();
    await entry.pool.close();
  }

  pools(): UpstreamPool[] {
    return [...this.#entries.values()].map((e) => e.pool);
  }

  async closeAll(): Promise<void> {
    for (const c of this.#checks.values()) c.checker?.stop();
    this.#checks.clear();
    this.#served.clear();
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const e of entries) e.abort.abort();
    await Promise.all(entries.map((e) => e.pool.close()));
  }
}
