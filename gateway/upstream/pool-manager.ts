import type { Logger } from 'pino';
import type { ServiceConfig } from '../config/gateway-config.js';
import type { Discovery } from '../plugin-api/discovery.js';
import { pluginContext } from '../plugin-api/plugin-context.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { EndpointRegistry } from './endpoint-registry.js';
import { UpstreamPool } from './upstream-pool.js';

interface Entry { pool: UpstreamPool; refs: number; abort: AbortController }

/**
 * Owns the discovery watches. Snapshots acquire a pool per service and release it when retired; a pool whose key
 * (service name + discovery type and options) is unchanged by a reload is shared, so its watch and endpoints carry on.
 */
export class PoolManager {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly plugins: PluginRegistry,
    private readonly registry: EndpointRegistry,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** Discovery for services whose endpoints come from their scaler (`discovery: { type: scaler }`). */
    private readonly scalerEndpoints?: (s: ServiceConfig) => Discovery | undefined,
  ) {}

  static keyOf(s: ServiceConfig): string {
    return `${s.name}\n${s.discovery.key}`;
  }

  /** `plugins`: the registry the service's config was validated against (it may hold third-party plugins). */
  acquire(s: ServiceConfig, plugins: PluginRegistry = this.plugins): UpstreamPool {
    const key = PoolManager.keyOf(s);
    const settings = { maxSockets: s.maxSocketsPerEndpoint, idleTimeoutMs: s.idleSocketTimeoutMs, connectTimeoutMs: s.connectTimeoutMs, breaker: s.circuitBreaker };
    const found = this.#entries.get(key);
    if (found) {
      found.refs++;
      found.pool.configure(settings);
      found.pool.configureHealthCheck(s.healthCheck);
      return found.pool;
    }
    const plugin = plugins.discovery(s.discovery.type);
    const fromScaler = this.scalerEndpoints?.(s);
    if (!plugin && !fromScaler) throw new Error(`unknown discovery type ${s.discovery.type}`);   // the loader already refused it
    const abort = new AbortController();
    const log = this.log.child({ plugin: s.discovery.type, service: s.name });
    const discovery = fromScaler ?? plugin!.create(s.discovery.options, pluginContext(log, abort.signal, this.now, s.discovery.baseDir));
    const pool = new UpstreamPool({ service: s.name, discovery, registry: this.registry, settings, log, now: this.now });
    this.#entries.set(key, { pool, refs: 1, abort });
    pool.start();
    pool.configureHealthCheck(s.healthCheck);
    return pool;
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
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const e of entries) e.abort.abort();
    await Promise.all(entries.map((e) => e.pool.close()));
  }
}
