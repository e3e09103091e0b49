import type { DiscoveryPlugin } from './discovery.js';
import type { ScalerPlugin } from './scaler.js';
import type { PolicyPlugin } from './policy.js';

/** What a plugin's `type` may be: it is written in routes.yaml and appears in logs. */
export const PLUGIN_TYPE_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Checks that `value` has the shape of a discovery plugin. Built-ins and third-party modules go through the same
 * check, so a malformed plugin is refused when the config is loaded rather than failing at its first watch.
 * Returns problems as sentences; empty means the plugin is well-formed.
 */
export function checkPluginShape(value: unknown): string[] {
  if (value === null || typeof value !== 'object') return [`a plugin must be an object, got ${value === null ? 'null' : typeof value}`];
  const p = value as Record<string, unknown>;
  const problems: string[] = [];
  if (p.kind !== 'discovery') problems.push(`kind must be "discovery", got ${JSON.stringify(p.kind)}`);
  if (typeof p.type !== 'string' || !PLUGIN_TYPE_PATTERN.test(p.type)) {
    problems.push(`type must be lower-case letters, digits and "-" (e.g. "eureka"), got ${JSON.stringify(p.type)}`);
  }
  if (p.optionsSchema === null || typeof p.optionsSchema !== 'object' || Array.isArray(p.optionsSchema)) {
    problems.push('optionsSchema must be a JSON Schema object');
  } else if ((p.optionsSchema as Record<string, unknown>).type !== 'object') {
    problems.push('optionsSchema must describe an object (type: "object")');
  }
  if (typeof p.create !== 'function') problems.push('create(options, ctx) must be a function');
  if (p.check !== undefined && typeof p.check !== 'function') problems.push('check, when present, must be a function');
  return problems;
}

/** Plugins by kind and type. Built-ins come from plugins/index.ts; routes.yaml may add modules (`plugins:`). */
export class PluginRegistry {
  readonly #discovery = new Map<string, DiscoveryPlugin<never>>();

  readonly #scalers = new Map<string, ScalerPlugin<never>>();

  readonly #policies = new Map<string, PolicyPlugin<never>>();

  constructor(plugins: readonly DiscoveryPlugin<never>[], scalers: readonly ScalerPlugin<never>[] = [], policies: readonly PolicyPlugin<never>[] = []) {
    for (const p of plugins) {
      const problems = checkPluginShape(p);
      if (problems.length) throw new Error(`malformed discovery plugin "${String(p.type)}": ${problems.join('; ')}`);
      if (this.#discovery.has(p.type)) throw new Error(`two discovery plugins have the type "${p.type}"`);
      this.#discovery.set(p.type, p);
    }
    for (const p of scalers) {
      if (this.#scalers.has(p.type)) throw new Error(`two scaler plugins have the type "${p.type}"`);
      this.#scalers.set(p.type, p);
    }
    for (const p of policies) {
      if (this.#policies.has(p.type)) throw new Error(`two policy plugins have the type "${p.type}"`);
      this.#policies.set(p.type, p);
    }
  }

  /** A third-party policy kind (`plugins:`); the built-in kinds are gateway/policies/policy-kinds.ts's. */
  policy(type: string): PolicyPlugin<Record<string, unknown>> | undefined {
    return this.#policies.get(type) as PolicyPlugin<Record<string, unknown>> | undefined;
  }

  policyTypes(): string[] {
    return [...this.#policies.keys()];
  }

  scaler(type: string): ScalerPlugin<Record<string, unknown>> | undefined {
    return this.#scalers.get(type) as ScalerPlugin<Record<string, unknown>> | undefined;
  }

  scalerTypes(): string[] {
    return [...this.#scalers.keys()];
  }

  /** A new registry with these plugins added; the receiver is unchanged (a refused reload leaves no trace). */
  with(plugins: readonly DiscoveryPlugin<never>[], policies: readonly PolicyPlugin<never>[] = []): PluginRegistry {
    return new PluginRegistry([...this.#discovery.values(), ...plugins], [...this.#scalers.values()], [...this.#policies.values(), ...policies]);
  }

  discovery(type: string): DiscoveryPlugin<Record<string, unknown>> | undefined {
    return this.#discovery.get(type) as DiscoveryPlugin<Record<string, unknown>> | undefined;
  }

  discoveryTypes(): string[] {
    return [...this.#discovery.keys()];
  }
}
