import type { DiscoveryPlugin } from './discovery.js';

/** Plugins by kind and type. Built once at start-up from plugins/index.ts; routes.yaml names them by `type`. */
export class PluginRegistry {
  readonly #discovery = new Map<string, DiscoveryPlugin<never>>();

  constructor(plugins: readonly DiscoveryPlugin<never>[]) {
    for (const p of plugins) {
      if (this.#discovery.has(p.type)) throw new Error(`two discovery plugins have the type "${p.type}"`);
      this.#discovery.set(p.type, p);
    }
  }

  discovery(type: string): DiscoveryPlugin<Record<string, unknown>> | undefined {
    return this.#discovery.get(type) as DiscoveryPlugin<Record<string, unknown>> | undefined;
  }

  discoveryTypes(): string[] {
    return [...this.#discovery.keys()];
  }
}
