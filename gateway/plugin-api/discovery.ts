import type { PluginContext } from './plugin-context.js';

/** One upstream instance. `address` is the canonical `http://host:port` and the key of its per-endpoint state. */
export interface Endpoint {
  readonly address: string;
  /** Relative share of traffic for weighted balancers; 1 when the source has no notion of weight. */
  readonly weight: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * A discovery source speaks in updates, as linkerd2-proxy's destination API does. The first update of a watch is
 * always a `reset` (or `not-found`, or `error`); later ones may be deltas.
 *
 * A `reset` equal to the current set changes nothing but the status's `lastSuccessAt`, so a polling source may send
 * one per successful poll. `error` says the source is failing while the watch goes on (a broken file that is still
 * watched): core keeps the last endpoints and marks the service's discovery down until the next good update.
 */
export type DiscoveryUpdate =
  | { readonly kind: 'reset'; readonly endpoints: readonly Endpoint[] }
  | { readonly kind: 'add'; readonly endpoints: readonly Endpoint[] }
  | { readonly kind: 'remove'; readonly addresses: readonly string[] }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'error'; readonly reason: string };

export interface Discovery {
  /**
   * Streams the endpoints of one service until `signal` aborts. Throwing (or ending) means the source is down: core
   * keeps the last endpoints it had and calls `watch` again with jittered backoff.
   */
  watch(service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate>;
  /** Releases connections and timers. Called once, after every watch was aborted. */
  close(): Promise<void>;
}

/**
 * A discovery plugin: a plain object listed in plugins/index.ts (or a module named in routes.yaml).
 * `optionsSchema` is a JSON Schema for the options beside `type` under a service's `discovery:`; core validates them
 * when the config is loaded, so every mistake is reported with file:line:col before anything starts.
 */
export interface DiscoveryPlugin<O = Record<string, unknown>> {
  readonly kind: 'discovery';
  readonly type: string;
  readonly optionsSchema: Readonly<Record<string, unknown>>;
  /** Checks that a schema cannot express; returns problems as [relative YAML path, message]. */
  check?(options: O): readonly (readonly [path: readonly (string | number)[], message: string])[];
  create(options: O, ctx: PluginContext): Discovery;
}

/**
 * `scheme://host:port` from parts a registry hands out (DNS, Consul, Kubernetes): IPv6 literals get brackets, the
 * result is canonical. Throws on a port outside 1-65535.
 */
export function endpointAddress(scheme: 'http' | 'https', host: string, port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port ${port} is out of range 1-65535`);
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return canonicalAddress(`${scheme}://${h}:${port}`);
}

/** Canonical endpoint address: lower-case scheme and host, explicit port, no path. Throws on anything else. */
export function canonicalAddress(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported scheme ${u.protocol} (http or https)`);
  if (u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
    throw new Error('an endpoint is scheme://host:port with no path, query or credentials');
  }
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.protocol}//${u.hostname}:${port}`;
}
