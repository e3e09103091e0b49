import type { DiscoveryPlugin } from './discovery.js';
import type { ScalerPlugin } from './scaler.js';

/** Plugins by kind and type. Built once at start-up from plugins/index.ts; routes.yaml names them by `type`. */
export class PluginRegistry {
  readonly #discovery = new Map<string, DiscoveryPlugin<never>>();

  readonly #scalers = new Map<string, ScalerPlugin<never>>();

  constructor(plugins: readonly DiscoveryPlugin<never>[], scalers: readonly ScalerPlugin<never>[] = []) {
    for (const p of plugins) {
      if (this.#discovery.has(p.type)) throw new Error(`two discovery plugins have the type "${p.type}"`);
      this.#discovery.set(p.type, p);
    }
    for (const p of scalers) {
      if (this.#scalers.has(p.type)) throw new Error(`two scaler plugins have the type "${p.type}"`);
      this.#scalers.set(p.type, p);
    }
  }

  scaler(type: string): ScalerPlugin<Record<string, unknown>> | undefined {
    return this.#scalers.get(type) as ScalerPlugin<Record<string, unknown>> | undefined;
  }

  scalerTypes(): string[] {
    return [...this.#scalers.keys()];
  }

  discovery(type: string): DiscoveryPlugin<Record<string, unknown>> | undefined {
    return this.#discovery.get(type) as DiscoveryPlugin<Record<string, unknown>> | undefined;
  }

  discoveryTypes(): string[] {
    return [...this.#discovery.keys()];
  }
}
