/**
 * A large, realistic routes.yaml for the capacity benchmarks (bench/reload-stall.ts) and the large-reload test: many
 * services behind one upstream, and routes that mix host routes (tenant hosts with a few prefixes each) with
 * host-less prefix routes, some limited to methods, some to a header, a few exact paths. Deterministic: the same
 * arguments give the same text, so a reload of it is "unchanged" unless `variant` differs.
 */
export interface LargeRoutesOptions {
  /** How many routes (10 000 in bench:reload). */
  readonly routes: number;
  /** How many services the routes spread over. */
  readonly services: number;
  /** How many tenant hosts the host routes (every other route) spread over; default 1 000, 5 host routes each. */
  readonly hosts?: number;
  /** The one endpoint every service lists (http://127.0.0.1:PORT). */
  readonly upstream: string;
  /** Changes the prefix and timeout of every route that `changesWithVariant`, so a reload really differs (0 = the original). */
  readonly variant?: number;
  /** Extra top-level YAML (server, log) placed before services; must end with a newline. */
  readonly header?: string;
}

const METHOD_SETS = ['[GET]', '[GET, POST]', '[GET, PUT, DELETE]'];
const RESOURCES = ['users', 'orders', 'items', 'carts', 'invoices', 'search', 'profiles', 'reports'];

/** One route in 50 (all of them host-less) differs between variants; the others are the same in every variant. */
export const changesWithVariant = (i: number) => i % 50 === 1;

/** One route in 25 is an exact path rather than a prefix. */
export const isExactRoute = (i: number) => i % 25 === 24;

/** The path a request must use to hit route `i` (host routes also need `largeRouteHost(i)`). */
export function largeRoutePath(i: number, variant = 0): string {
  const resource = RESOURCES[i % RESOURCES.length];
  const version = variant && changesWithVariant(i) ? `v${2 + variant}` : 'v1';
  return `/${version}/${resource}-${i}`;
}

export const DEFAULT_HOSTS = 1000;

/** Every other route is a host route on one of `hosts` tenant hosts; the rest match any host. */
export function largeRouteHost(i: number, hosts = DEFAULT_HOSTS): string | undefined {
  return i % 2 === 0 ? `t${(i / 2) % hosts}.api.example.com` : undefined;
}

export function largeRoutesYaml(o: LargeRoutesOptions): string {
  const variant = o.variant ?? 0;
  const out: string[] = [`# Written by bench/large-routes-file.ts: ${o.routes} routes over ${o.services} services and ${o.hosts ?? DEFAULT_HOSTS} hosts (variant ${variant})\n`];
  out.push(o.header ?? '', 'services:\n');
  for (let s = 0; s < o.services; s++) {
    out.push(`  svc-${s}:\n    discovery: { type: static, endpoints: [${JSON.stringify(o.upstream)}] }\n`);
    if (s % 4 === 1) out.push('    balancer: least-request\n');
    if (s % 5 === 2) out.push('    retry: { attempts: 2 }\n');
  }
  out.push('routes:\n');
  for (let i = 0; i < o.routes; i++) {
    const host = largeRouteHost(i, o.hosts);
    const path = largeRoutePath(i, variant);
    const match: string[] = [];
    if (host) match.push(`host: ${host}`);
    const exact = isExactRoute(i);
    match.push(exact ? `exactPath: ${path}` : `path: ${path}`);
    if (i % 3 === 0) match.push(`methods: ${METHOD_SETS[(i / 3) % METHOD_SETS.length]}`);
    if (i % 10 === 7) match.push(`headers: { x-tenant: tenant-${i % 97} }`);
    out.push(`  - name: r${i}\n    match: { ${match.join(', ')} }\n    service: svc-${i % o.services}\n`);
    if (i % 7 === 0 && !exact) out.push('    stripPrefix: true\n');
    if (variant && changesWithVariant(i)) out.push(`    timeoutMs: ${10_000 + variant}\n`);
  }
  return out.join('');
}
