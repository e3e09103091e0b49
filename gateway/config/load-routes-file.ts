import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { checkAdminAuth } from './check-admin-auth.js';
import { deepFreeze } from './deep-freeze.js';
import { loadPluginModules } from './load-plugin-modules.js';
import { stableStringify } from './stable-stringify.js';
import type {
  AdminAuthConfig, BalancerName, BreakerConfig, GatewayConfig, HealthCheckConfig, ListenAddress, LogConfig, OutlierConfig,
  RetryConfig, RouteConfig, ServerLimits, ServiceConfig, TracingConfig,
} from './gateway-config.js';
import { validatePluginOptions, validateRoutesDocument } from './schema-validator.js';
import { buildScalingConfig, checkScalerDiscovery, SCALER_DISCOVERY_TYPE, type RawScaling } from '../scaling/scaling-config.js';
import { formatYamlPath, YamlSource, type YamlPath } from './yaml-source.js';

/** The YAML after schema validation and defaults: the shape routes.schema.json describes. */
interface RawConfig {
  listen: string;
  admin: string | null;
  adminAuth?: AdminAuthConfig;
  server: ServerLimits;
  log: LogConfig;
  tracing: TracingConfig;
  services: Record<string, {
    discovery: { type: string } & Record<string, unknown>;
    balancer: BalancerName; timeoutMs: number; maxSocketsPerEndpoint: number; idleSocketTimeoutMs: number;
    warmTimeoutMs: number; hostHeader: string; hashOn?: string; slowStartMs: number; tryTimeoutMs?: number;
    connectTimeoutMs: number; retry: RetryConfig; circuitBreaker: BreakerConfig; outlierDetection: OutlierConfig;
    bulkhead: { maxConcurrent: number; maxQueue: number }; healthCheck?: HealthCheckConfig;
    scaling?: RawScaling;
  }>;
  routes: {
    name?: string;
    match: { host?: string | string[]; path?: string; exactPath?: string; pathRegex?: string; methods?: string[]; headers?: Record<string, string> };
    service: string; stripPrefix: boolean; replacePrefix?: string; websocket: boolean; timeoutMs?: number; maxBodyBytes?: number;
  }[];
}

/** Collects problems with their positions; a config is accepted only when none were found. */
class Problems {
  readonly list: ConfigProblem[] = [];
  constructor(readonly file: string, readonly source: YamlSource) {}

  add(path: YamlPath, message: string, key?: string): void {
    const { line, col } = this.source.locate(path, key);
    this.list.push({ file: this.file, line, col, path: formatYamlPath(key === undefined ? path : [...path, key]), message });
  }
}

/** Where a caller wants the loader's phase times (the reloader's ReloadTimer). */
export interface PhaseClock {
  /** `phase` ended now. */
  lap(phase: string): void;
  /** `phase` took `ms`, measured elsewhere. */
  record(phase: string, ms: number): void;
}

/**
 * Reads, parses and validates a routes file, loading the plugin modules it names first. Throws ConfigError listing
 * every problem with file:line:col.
 */
export async function loadRoutesFile(file: string, plugins: PluginRegistry, clock?: PhaseClock): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 0, col: 0, path: '', message: `cannot read: ${(err as Error).message}` }], { cause: err });
  }
  clock?.lap('read');
  const source = new YamlSource(text);
  clock?.lap('parse');
  if (source.syntaxProblems().length) return parseRoutes(text, file, plugins);   // throws with the syntax errors
  const loaded = await loadPluginModules(source, file, plugins);
  if (loaded.problems.length) throw new ConfigError(loaded.problems);
  clock?.lap('plugins');
  // parseRoutes parses the text again: this phase includes a second YAML parse.
  const config = parseRoutes(text, file, loaded.registry, loaded.origins);
  clock?.lap('validate');
  return config;
}

/**
 * The pure part of loading, for tests and callers that already hold the text. `plugins` must already hold any
 * third-party plugins the file names (loadRoutesFile loads them); `origins` maps their types to their modules.
 */
export function parseRoutes(text: string, file: string, plugins: PluginRegistry, origins: ReadonlyMap<string, string> = new Map()): GatewayConfig {
  const source = new YamlSource(text);
  const problems = new Problems(file, source);
  for (const p of source.syntaxProblems()) problems.list.push({ file, ...p.pos, path: '', message: p.message });
  if (problems.list.length) throw new ConfigError(problems.list);

  const raw: unknown = source.doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.add([], 'the file must be a mapping with services and routes');
    throw new ConfigError(problems.list);
  }
  for (const p of validateRoutesDocument(raw)) problems.add(p.path, p.message, p.key);
  if (problems.list.length) throw new ConfigError(problems.list.sort((a, b) => a.line - b.line || a.col - b.col));

  const config = build(raw as RawConfig, problems, plugins, origins, createHash('sha256').update(text).digest('hex'));
  if (problems.list.length) throw new ConfigError(problems.list.sort((a, b) => a.line - b.line || a.col - b.col));
  return deepFreeze(config);
}

function parseAddress(value: string, path: YamlPath, problems: Problems): ListenAddress {
  const at = value.lastIndexOf(':');
  let host = value.slice(0, at);
  const port = Number(value.slice(at + 1));
  if (host.startsWith('[')) host = host.slice(1, -1);
  // Port 0 asks the OS for a free port (tests, side-by-side instances); the bound port is logged at start.
  if (!(port >= 0 && port <= 65535)) problems.add(path, `port ${value.slice(at + 1)} is out of range 0-65535`);
  if (host.includes(':') && isIP(host) !== 6) problems.add(path, `"${host}" is not an IPv6 address`);
  return { host, port };
}

function checkCidr(value: string, path: YamlPath, problems: Problems): void {
  const [ip, bits, extra] = value.split('/');
  const family = isIP(ip ?? '');
  const max = family === 6 ? 128 : 32;
  const ok = family !== 0 && extra === undefined && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
  if (!ok) problems.add(path, `"${value}" is not an IP address or CIDR block`);
}

function build(raw: RawConfig, problems: Problems, plugins: PluginRegistry, origins: ReadonlyMap<string, string>, hash: string): GatewayConfig {
  const listen = parseAddress(raw.listen, ['listen'], problems);
  const admin = raw.admin === null ? null : parseAddress(raw.admin, ['admin'], problems);
  for (const [path, message] of checkAdminAuth(admin, raw.adminAuth ?? null)) problems.add(path, message);
  if (raw.server.headersTimeoutMs > raw.server.requestTimeoutMs) {
    problems.add(['server', 'headersTimeoutMs'], `must not exceed server.requestTimeoutMs (${raw.server.requestTimeoutMs})`);
  }
  raw.server.trustedProxies.forEach((v, i) => checkCidr(v, ['server', 'trustedProxies', i], problems));

  const services = new Map<string, ServiceConfig>();
  for (const [name, s] of Object.entries(raw.services)) {
    const base = ['services', name, 'discovery'];
    const { type, ...options } = s.discovery;
    const plugin = plugins.discovery(type);
    const report = (path: YamlPath, message: string, key?: string) => problems.add(path, message, key);
    const scaling = s.scaling ? buildScalingConfig(s.scaling, ['services', name, 'scaling'], plugins, report) : null;
    checkScalerDiscovery(type, options, s.scaling, ['services', name], plugins, report);
    if (type === SCALER_DISCOVERY_TYPE) {
      // Endpoints from the service's scaler: checked above, no discovery plugin involved.
    } else if (!plugin) {
      problems.add([...base, 'type'], `unknown discovery type "${type}" (known: ${plugins.discoveryTypes().join(', ')})`);
    } else {
      const found = validatePluginOptions(plugin.optionsSchema, options, base);
      for (const p of found) problems.add(p.path, p.message, p.key);
      if (!found.length) for (const [rel, message] of plugin.check?.(options) ?? []) problems.add([...base, ...rel], message);
    }
    if (!['preserve', 'endpoint'].includes(s.hostHeader) && !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(s.hostHeader)) {
      problems.add(['services', name, 'hostHeader'], 'must be preserve, endpoint or a host[:port]');
    }
    if ((s.balancer === 'consistent-hash') !== (s.hashOn !== undefined)) {
      problems.add(['services', name, s.hashOn === undefined ? 'balancer' : 'hashOn'], 'consistent-hash and hashOn go together');
    }
    if (s.tryTimeoutMs !== undefined && s.tryTimeoutMs > s.timeoutMs) {
      problems.add(['services', name, 'tryTimeoutMs'], `must not exceed timeoutMs (${s.timeoutMs}), the deadline that includes retries`);
    }
    services.set(name, {
      name, balancer: s.balancer, timeoutMs: s.timeoutMs, maxSocketsPerEndpoint: s.maxSocketsPerEndpoint,
      idleSocketTimeoutMs: s.idleSocketTimeoutMs, warmTimeoutMs: s.warmTimeoutMs, hostHeader: s.hostHeader,
      hashOn: s.hashOn, slowStartMs: s.slowStartMs, tryTimeoutMs: s.tryTimeoutMs ?? s.timeoutMs,
      connectTimeoutMs: s.connectTimeoutMs, retry: s.retry, circuitBreaker: s.circuitBreaker,
      outlierDetection: s.outlierDetection, bulkhead: s.bulkhead, healthCheck: s.healthCheck ?? null,
      // A scaler-fed pool is keyed by its scaler too: new scaler options start a new set of instances.
      discovery: { type, options, key: stableStringify(type === SCALER_DISCOVERY_TYPE ? { type, scaler: scaling?.scaler.key } : { type, options, module: origins.get(type) }) },
      scaling,
    });
  }

  const names = new Map<string, number>();
  const matchKeys = new Map<string, number>();
  const routes: RouteConfig[] = raw.routes.map((r, index) => {
    const at = (...rest: (string | number)[]) => ['routes', index, ...rest];
    const name = r.name ?? `route-${index}`;
    if (names.has(name)) problems.add(at('name'), `duplicate route name "${name}" (also routes[${names.get(name)}])`);
    names.set(name, index);

    const service = services.get(r.service);
    if (!service) problems.add(at('service'), `unknown service "${r.service}" (defined: ${[...services.keys()].join(', ')})`);

    const m = r.match;
    const pathForms = (['path', 'exactPath', 'pathRegex'] as const).filter((k) => m[k] !== undefined);
    if (pathForms.length > 1) problems.add(at('match'), `use one of path, exactPath, pathRegex (found ${pathForms.join(', ')})`);
    if (m.pathRegex !== undefined) {
      try { new RegExp(m.pathRegex); } catch (err) { problems.add(at('match', 'pathRegex'), `invalid regular expression: ${(err as Error).message}`); }
    }
    for (const k of ['path', 'exactPath'] as const) {
      const p = m[k];
      if (p !== undefined && (/\/\/|\/\.\.?(\/|$)|%|\?|#/.test(p) || (k === 'path' && p.length > 1 && p.endsWith('/')))) {
        problems.add(at('match', k), 'must be a normalized path: no //, dot-segments, %, ? or # (and a prefix has no trailing /)');
      }
    }
    if ((r.stripPrefix || r.replacePrefix !== undefined) && m.path === undefined) {
      problems.add(at(r.stripPrefix ? 'stripPrefix' : 'replacePrefix'), 'a prefix rewrite needs match.path');
    }
    if (r.stripPrefix && r.replacePrefix !== undefined) problems.add(at('replacePrefix'), 'use stripPrefix or replacePrefix, not both');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers ?? {})) {
      if (k.toLowerCase() === 'host') problems.add(at('match', 'headers'), 'match the host with match.host', k);
      headers[k.toLowerCase()] = v;
    }
    const hosts = (m.host === undefined ? [] : Array.isArray(m.host) ? m.host : [m.host]).map((h) => h.toLowerCase());
    const methods = [...(m.methods ?? [])].sort();

    const key = stableStringify({ hosts: [...hosts].sort(), path: m.path, exactPath: m.exactPath, pathRegex: m.pathRegex, methods, headers });
    if (matchKeys.has(key)) problems.add(at('match'), `same match as routes[${matchKeys.get(key)}]: this route could never be chosen`);
    matchKeys.set(key, index);

    return {
      name, index, service: r.service, stripPrefix: r.stripPrefix, replacePrefix: r.replacePrefix, websocket: r.websocket,
      timeoutMs: r.timeoutMs ?? service?.timeoutMs ?? 15000,
      maxBodyBytes: r.maxBodyBytes ?? raw.server.maxBodyBytes,
      match: { hosts, path: m.path, exactPath: m.exactPath, pathRegex: m.pathRegex, methods, headers },
    };
  });

  return { file: problems.file, hash, listen, admin, adminAuth: raw.adminAuth ?? null, server: raw.server, log: raw.log, tracing: raw.tracing, services, routes, plugins };
}
