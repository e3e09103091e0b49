import type { Logger } from 'pino';
import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import type { Discovery } from '../plugin-api/discovery.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { EndpointRegistry } from '../upstream/endpoint-registry.js';
import type { HealthVerdict } from '../upstream/health-verdicts.js';
import { PoolManager } from '../upstream/pool-manager.js';

/**
 * The host's only active health checks, in the cluster primary: one probe per endpoint per interval however many
 * workers serve (Envoy's per-worker checks multiply the probes by the worker count). The primary watches the
 * discovery of the serving config's checked services itself and runs their HealthCheckers as one gateway does
 * (PoolManager); each verdict goes to every worker (`broadcast`), whose HealthVerdicts apply it as a local check's
 * would be. Outlier ejection, fed by real traffic, stays with each worker.
 *
 * The checks follow the committed config only: `follow` is called with the config the workers serve, never with one
 * they are still preparing.
 */
export class PrimaryHealthChecks {
  readonly #registry = new EndpointRegistry();
  readonly #pools: PoolManager;
  #checked: readonly ServiceConfig[] = [];

  constructor(
    plugins: PluginRegistry,
    log: Logger,
    scalerEndpoints: (s: ServiceConfig) => Discovery | undefined,
    broadcast: (v: HealthVerdict) => void,
  ) {
    this.#pools = new PoolManager(plugins, this.#registry, log, Date.now, scalerEndpoints);
    this.#registry.verdicts.onChange(broadcast);
  }

  /** `config` is the one the workers serve now: its checked services are probed, the previous config's let go. */
  async follow(config: GatewayConfig): Promise<void> {
    const checked = [...config.services.values()].filter((s) => s.healthCheck !== null);
    for (const s of checked) this.#pools.acquire(s, config.plugins);
    this.#pools.commit(checked);
    const previous = this.#checked;
    this.#checked = checked;
    await Promise.all(previous.map((s) => this.#pools.release(s)));
  }

  /** The endpoints out of rotation now, for a worker that starts. */
  unhealthy(): HealthVerdict[] {
    return this.#registry.verdicts.unhealthy();
  }

  async close(): Promise<void> {
    await this.#pools.closeAll();
    this.#registry.destroyAll();
  }
}
