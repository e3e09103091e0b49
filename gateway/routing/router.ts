import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '../config/gateway-config.js';
import type { PolicyChain } from '../policies/policy-chain.js';
import { compareRank, compileRoute, type CompiledRoute } from './compiled-route.js';

/**
 * The routing table, compiled once per config.
 *
 * Specificity (documented in docs/routing.md), most specific first:
 *  1. host: exact host, then the longest matching `*.suffix` wildcard, then routes without a host;
 *  2. path: exact path, then regex (file order, as nginx checks regex locations before plain prefixes),
 *     then the longest segment-aligned prefix;
 *  3. inside one path: more header conditions, then routes that name methods, then file order.
 * The first route whose method and headers also match wins. When routes match everything but the method, the
 * answer is 405 with their methods in Allow.
 */
export type RouteMatchResult =
  | { readonly kind: 'route'; readonly route: CompiledRoute }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'none' };

interface PrefixNode {
  readonly children: Map<string, PrefixNode>;
  routes: CompiledRoute[];
}

/** The routes of one host tier, indexed by path form. */
class PathTable {
  readonly #exact = new Map<string, CompiledRoute[]>();
  readonly #prefix: PrefixNode = { children: new Map(), routes: [] };
  readonly #regex: { re: RegExp; route: CompiledRoute }[] = [];

  add(route: CompiledRoute): void {
    const m = route.config.match;
    if (m.exactPath !== undefined) {
      const list = this.#exact.get(m.exactPath) ?? [];
      list.push(route);
      this.#exact.set(m.exactPath, list);
    } else if (m.pathRegex !== undefined) {
      this.#regex.push({ re: new RegExp(m.pathRegex), route });
    } else {
      let node = this.#prefix;
      for (const seg of (m.path ?? '/').split('/').slice(1)) {
        if (seg === '') continue;
        let next = node.children.get(seg);
        if (!next) { next = { children: new Map(), routes: [] }; node.children.set(seg, next); }
        node = next;
      }
      node.routes.push(route);
    }
  }

  seal(): void {
    for (const list of this.#exact.values()) list.sort(compareRank);
    const sortTree = (n: PrefixNode): void => { n.routes.sort(compareRank); n.children.forEach(sortTree); };
    sortTree(this.#prefix);
    this.#regex.sort((a, b) => a.route.config.index - b.route.config.index);
  }

  /** Returns the winning route; `allow`, when given, collects the methods of routes that failed only on the method. */
  match(method: string, path: string, headers: IncomingHttpHeaders, allow: Set<string> | null): CompiledRoute | undefined {
    const exact = this.#exact.get(path);
    if (exact) {
      const r = pick(exact, method, headers, allow);
      if (r) return r;
    }
    for (const { re, route } of this.#regex) {
      if (re.test(path)) {
        const r = pick([route], method, headers, allow);
        if (r) return r;
      }
    }
    // Walk the segments down the prefix tree, remembering every node on the way; the deepest match wins.
    const trail = TRAIL;
    trail.length = 0;
    trail.push(this.#prefix);
    let node: PrefixNode | undefined = this.#prefix;
    let start = 1;
    while (node && start <= path.length) {
      let end = path.indexOf('/', start);
      if (end < 0) end = path.length;
      if (end === start) break;
      node = node.children.get(path.slice(start, end));
      if (node) trail.push(node);
      start = end + 1;
    }
    for (let i = trail.length - 1; i >= 0; i--) {
      const routes = (trail[i] as PrefixNode).routes;
      if (routes.length) {
        const r = pick(routes, method, headers, allow);
        if (r) return r;
      }
    }
    return undefined;
  }
}

// The prefix walk's trail, reused: match() runs to its end without yielding, so one array serves every call.
const TRAIL: PrefixNode[] = [];

function pick(routes: readonly CompiledRoute[], method: string, headers: IncomingHttpHeaders, allow: Set<string> | null): CompiledRoute | undefined {
  for (const r of routes) {
    let ok = true;
    const conditions = r.headers;
    for (let i = 0; i < conditions.length; i++) {
      const condition = conditions[i] as readonly [string, string];
      if (headers[condition[0]] !== condition[1]) { ok = false; break; }
    }
    if (!ok) continue;
    if (r.methods === null || r.methods.has(method)) return r;
    if (allow !== null) for (const m of r.methods) allow.add(m);
  }
  return undefined;
}

/** What lets a long build give the event loop a turn (runtime/slice-clock.ts's SliceClock). */
export interface Slices {
  due(): boolean;
  pause(): Promise<void>;
}

export class Router {
  readonly #byHost = new Map<string, PathTable>();
  /** Keyed by ".example.com"; looked up at each dot of the host, longest suffix first. */
  readonly #wildcards = new Map<string, PathTable>();
  #anyHost: PathTable | undefined;
  #size = 0;

  constructor(routes: readonly RouteConfig[] = []) {
    for (const config of routes) this.#add(config);
    for (const table of this.#tables()) table.seal();
  }

  /**
   * The same table, built with a turn of the event loop whenever `slices` is due. Why: compiling and indexing
   * 10 000 routes took 27-82 ms in one piece on the 2-core VM, the largest stall of a reload (bench:reload).
   */
  static async build(routes: readonly RouteConfig[], slices: Slices, chainOf?: (route: RouteConfig) => PolicyChain | null): Promise<Router> {
    const router = new Router();
    for (const config of routes) {
      router.#add(config, chainOf?.(config) ?? null);
      if (slices.due()) await slices.pause();
    }
    for (const table of router.#tables()) {
      table.seal();
      if (slices.due()) await slices.pause();
    }
    return router;
  }

  get size(): number {
    return this.#size;
  }

  #add(config: RouteConfig, policies: PolicyChain | null = null): void {
    this.#size++;
    const route = compileRoute(config, policies);
    if (config.match.hosts.length === 0) {
      (this.#anyHost ??= new PathTable()).add(route);
      return;
    }
    for (const host of config.match.hosts) {
      const wildcard = host.startsWith('*.');
      const tables = wildcard ? this.#wildcards : this.#byHost;
      const key = wildcard ? host.slice(1) : host;   // "*.example.com" is keyed ".example.com"
      let table = tables.get(key);
      if (!table) { table = new PathTable(); tables.set(key, table); }
      table.add(route);
    }
  }

  *#tables(): Iterable<PathTable> {
    yield* this.#byHost.values();
    yield* this.#wildcards.values();
    if (this.#anyHost) yield this.#anyHost;
  }

  /** `host` is lower-case without port; `path` is normalized. */
  match(method: string, host: string, path: string, headers: IncomingHttpHeaders): RouteMatchResult {
    const route = this.#find(method, host, path, headers, null);
    if (route) return { kind: 'route', route };
    // No route: a second walk collects the methods of the routes that failed only on the method, for a 405. The Set
    // is made only here, not for every request (callgrind: about 0.3k instructions per request).
    const allow = new Set<string>();
    this.#find(method, host, path, headers, allow);
    if (allow.size) return { kind: 'method-not-allowed', allow: [...allow].sort() };
    return { kind: 'none' };
  }

  #find(method: string, host: string, path: string, headers: IncomingHttpHeaders, allow: Set<string> | null): CompiledRoute | undefined {
    const exact = this.#byHost.get(host);
    let route = exact?.match(method, path, headers, allow);
    if (!route && this.#wildcards.size) {
      // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com" itself.
      for (let dot = host.indexOf('.', 1); dot > 0 && !route; dot = host.indexOf('.', dot + 1)) {
        route = this.#wildcards.get(host.slice(dot))?.match(method, path, headers, allow);
      }
    }
    return route ?? this.#anyHost?.match(method, path, headers, allow);
  }
}
