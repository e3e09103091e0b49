import type { RouteConfig } from '../config/gateway-config.js';
import type { PolicyChain } from '../policies/policy-chain.js';
import { ServiceSplit } from './service-split.js';

/** A route with everything the hot path needs precomputed: method set, header pairs, the path rewrite. */
export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly name: string;
  readonly service: string;
  /** null: any method. */
  readonly methods: ReadonlySet<string> | null;
  readonly headers: readonly (readonly [name: string, value: string])[];
  readonly rewrite: (path: string) => string;
  /** The route's policies, built with the config; null when it lists none (the request path then skips them). */
  readonly policies: PolicyChain | null;
  /**
   * A split route: the side a request goes to (each a route of one service); null for a route of one service, which
   * is what the request path then uses as is.
   */
  readonly split: ServiceSplit | null;
  /** Sort key inside one path bucket: more header conditions first, then routes that name methods, then file order. */
  readonly rank: readonly [number, number, number];
}

function compileRewrite(r: RouteConfig): (path: string) => string {
  const prefix = r.match.path;
  if (prefix === undefined || prefix === '/') {
    if (r.replacePrefix !== undefined && prefix === '/') {
      const to = r.replacePrefix.endsWith('/') ? r.replacePrefix.slice(0, -1) : r.replacePrefix;
      return (path) => to + path;
    }
    return (path) => path;
  }
  const n = prefix.length;
  if (r.stripPrefix) return (path) => (path.length === n ? '/' : path.slice(n));
  if (r.replacePrefix !== undefined) {
    const to = r.replacePrefix;
    const base = to.endsWith('/') ? to.slice(0, -1) : to;
    return (path) => (path.length === n ? to : base + path.slice(n));
  }
  return (path) => path;
}

export function compileRoute(r: RouteConfig, policies: PolicyChain | null = null): CompiledRoute {
  const headers = Object.entries(r.match.headers);
  const split = r.split == null ? null : new ServiceSplit(
    r.split.map((side) => compileRoute({ ...r, service: side.service, timeoutMs: side.timeoutMs, tryTimeoutMs: side.tryTimeoutMs, split: null, stickyBy: null }, policies)),
    r.split.map((side) => side.weight),
    r.stickyBy ?? null,
  );
  return {
    split,
    config: r,
    name: r.name,
    service: r.service,
    methods: r.match.methods.length ? new Set(r.match.methods) : null,
    headers,
    rewrite: compileRewrite(r),
    policies,
    rank: [-headers.length, r.match.methods.length ? 0 : 1, r.index],
  };
}

export function compareRank(a: CompiledRoute, b: CompiledRoute): number {
  return a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || a.rank[2] - b.rank[2];
}
