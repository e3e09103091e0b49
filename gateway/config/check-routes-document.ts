import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { isScalar, isSeq } from 'yaml';
import type { ConfigProblem } from '../errors.js';
import { ACCESS_FIELDS, unknownAccessFields } from '../proxy/access-line-format.js';
import type { RawScaling } from './scaling-config.js';
import { checkAdminAuth } from './check-admin-auth.js';
import type {
  AcmeChallengeType, AcmeConfig, AdminAuthConfig, BalancerName, BreakerConfig, FleetConfig, GatewayConfig, HealthCheckConfig, ListenAddress, LogConfig, OutlierConfig,
  RateLimitStoreConfig, RetryConfig, RouteConfig, ServerLimits, TlsConfig, TlsVersion, TracingConfig, UpstreamProtocol,
} from './gateway-config.js';
import { validateRoutesDocument } from './schema-validator.js';
import { stableStringify } from './stable-stringify.js';
import { tryTimeoutMs } from './try-timeout.js';
import { collectLocations, type LocationData } from './yaml-locations.js';
import { formatYamlPath, YamlSource, type Locator, type YamlPath } from './yaml-source.js';

/** Where a caller wants the loader's phase times (the reloader's ReloadTimer). */
export interface PhaseClock {
  /** `phase` ended now. */
  lap(phase: string): void;
  /** `phase` took `ms`, measured elsewhere. */
  record(phase: string, ms: number): void;
}

/** A service as the YAML has it after schema validation and defaults. */
export interface RawService {
  discovery: { type: string } & Record<string, unknown>;
  balancer: BalancerName; timeoutMs: number; maxSocketsPerEndpoint: number; idleSocketTimeoutMs: number;
  warmTimeoutMs: number; hostHeader: string; hashOn?: string; slowStartMs: number; tryTimeoutMs?: number;
  connectTimeoutMs: number; protocol: UpstreamProtocol; tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
  retry: RetryConfig; circuitBreaker: BreakerConfig; outlierDetection: OutlierConfig;
  bulkhead: { maxConcurrent: number; maxQueue: number }; healthCheck?: HealthCheckConfig;
  scaling?: RawScaling;
}

/** The YAML after schema validation and defaults: the shape routes.schema.json describes. */
interface RawConfig {
  listen: string;
  admin: string | null;
  adminAuth?: AdminAuthConfig;
  server: ServerLimits;
  tls?: {
    listen: string; certificates?: { cert: string; key: string }[]; minVersion: TlsVersion; http2: boolean; redirectHttp: boolean;
    hsts?: { maxAgeS: number; includeSubDomains: boolean };
    acme?: {
      directory: string; email?: string; domains: string[]; storage: string; caFile?: string; challenges: AcmeChallengeType[];
      retry: { initialMs: number; maxMs: number };
    };
  };
  log: LogConfig;
  tracing: TracingConfig;
  fleet?: Omit<FleetConfig, 'instance'> & { instance?: string };
  services: Record<string, RawService>;
  policies: Record<string, Record<string, unknown>>;
  rateLimitStore?: RateLimitStoreConfig;
  routes: {
    name?: string;
    match: { host?: string | string[]; path?: string; exactPath?: string; pathRegex?: string; methods?: string[]; headers?: Record<string, string> };
    service?: string; split?: { service: string; weight: number }[]; stickyBy?: string; stripPrefix: boolean; replacePrefix?: string; websocket: boolean; timeoutMs?: number; maxBodyBytes?: number; policies: string[];
  }[];
}

/** Collects problems with their positions; a config is accepted only when none were found. */
export class Problems {
  readonly list: ConfigProblem[] = [];
  constructor(readonly file: string, readonly locator: Locator) {}

  add(path: YamlPath, message: string, key?: string): void {
    const { line, col } = this.locator.locate(path, key);
    this.list.push({ file: this.file, line, col, path: formatYamlPath(key === undefined ? path : [...path, key]), message });
  }
}

export const inFileOrder = (problems: ConfigProblem[]) => problems.sort((a, b) => a.line - b.line || a.col - b.col);

/** A `plugins:` entry that names a module, and where it stands. */
export interface PluginEntry {
  readonly index: number;
  readonly spec: string;
  readonly line: number;
  readonly col: number;
}

/** `tls:` before its files are read: the certificates as absolute paths (read-certificates.ts reads them). */
export type TlsSettings = Omit<TlsConfig, 'certificates'> & { readonly certificates: readonly { readonly cert: string; readonly key: string }[] };

/** The settings of a GatewayConfig that need no plugin (nor any file) to check. */
export type DocumentSettings = Pick<GatewayConfig, 'listen' | 'admin' | 'adminAuth' | 'server' | 'log' | 'tracing' | 'rateLimitStore' | 'fleet'> & { readonly tls: TlsSettings | null };

/**
 * Everything about a routes file that can be checked without the plugin registry: plain data, so the parse worker
 * (routes-file-worker.ts) can hand it to the main thread. The services are left raw: their checks need the plugins.
 */
export interface CheckedDocument {
  readonly file: string;
  /** sha256 of the text. */
  readonly hash: string;
  /** How far the checks got: a syntax error stops everything, a schema error stops the checks after the schema. */
  readonly stage: 'syntax' | 'schema' | 'checked';
  readonly problems: ConfigProblem[];
  /** Empty at stage syntax (the modules are not loaded when the file does not parse). */
  readonly plugins: PluginEntry[];
  /** At stage checked; null before. */
  readonly settings: DocumentSettings | null;
  readonly services: Record<string, RawService>;
  /** `policies:` as written (each one kind key): their options are checked with the kinds (load-policies.ts). */
  readonly policies: Record<string, Record<string, unknown>>;
  readonly routes: RouteConfig[];
  /** Where every node under `services:`, `tls:` and `policies:` stands, for the problems the main thread finds there. */
  readonly locations: LocationData;
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

function pluginEntries(source: YamlSource): PluginEntry[] {
  const node = source.doc.get('plugins', true);
  if (!isSeq(node)) return [];
  const entries: PluginEntry[] = [];
  node.items.forEach((item, index) => {
    // Anything but a non-empty string is the schema's to report.
    if (isScalar(item) && typeof item.value === 'string' && item.value) entries.push({ index, spec: item.value, ...source.locate(['plugins', index]) });
  });
  return entries;
}

/** Parses and checks `text` (the contents of `file`) as far as it can without plugins. */
export function checkRoutesDocument(text: string, file: string, clock?: PhaseClock): CheckedDocument {
  const hash = createHash('sha256').update(text).digest('hex');
  const source = new YamlSource(text);
  clock?.lap('parse');
  const problems = new Problems(file, source);
  const result = (stage: CheckedDocument['stage'], rest: Partial<CheckedDocument> = {}): CheckedDocument => ({
    file, hash, stage, problems: problems.list, plugins: [], settings: null, services: {}, policies: {}, routes: [], locations: new Map(), ...rest,
  });
  for (const p of source.syntaxProblems()) problems.list.push({ file, ...p.pos, path: '', message: p.message });
  if (problems.list.length) return result('syntax');

  const plugins = pluginEntries(source);
  const raw: unknown = source.doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.add([], 'the file must be a mapping with services and routes');
    return result('schema', { plugins });
  }
  for (const p of validateRoutesDocument(raw)) problems.add(p.path, p.message, p.key);
  clock?.lap('validate');
  if (problems.list.length) return result('schema', { plugins: plugins, problems: inFileOrder(problems.list) });

  const config = raw as RawConfig;
  const settings = checkSettings(config, problems, dirname(resolve(file)));
  const routes = checkRoutes(config, problems);
  clock?.lap('check');
  return result('checked', { plugins, settings, services: config.services, policies: config.policies, routes, locations: collectLocations(source, ['services', 'tls', 'policies']) });
}

function checkSettings(raw: RawConfig, problems: Problems, baseDir: string): DocumentSettings {
  const listen = parseAddress(raw.listen, ['listen'], problems);
  const tls = raw.tls ? checkTls(raw.tls, listen, problems, baseDir) : null;
  const admin = raw.admin === null ? null : parseAddress(raw.admin, ['admin'], problems);
  for (const [path, message] of checkAdminAuth(admin, raw.adminAuth ?? null)) problems.add(path, message);
  if (raw.server.headersTimeoutMs > raw.server.requestTimeoutMs) {
    problems.add(['server', 'headersTimeoutMs'], `must not exceed server.requestTimeoutMs (${raw.server.requestTimeoutMs})`);
  }
  raw.server.trustedProxies.forEach((v, i) => checkCidr(v, ['server', 'trustedProxies', i], problems));
  const format = raw.log.accessFormat;
  if (format !== 'json' && format !== 'combined') {
    const unknown = unknownAccessFields(format);
    if (unknown.length > 0) problems.add(['log', 'accessFormat'], `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => `{${f}}`).join(', ')}; the fields are ${ACCESS_FIELDS.join(', ')}`);
    else if (!format.includes('{')) problems.add(['log', 'accessFormat'], 'is neither json, combined nor a template with {field}s');
  }
  const fleet = raw.fleet ? fleetSettings(raw.fleet, baseDir) : null;
  return { listen, admin, adminAuth: raw.adminAuth ?? null, server: raw.server, tls, log: raw.log, tracing: raw.tracing, rateLimitStore: raw.rateLimitStore ?? null, fleet };
}

/** `fleet:` with its defaults: the instance named after the host and process, TLS files from this file's directory. */
function fleetSettings(raw: NonNullable<RawConfig['fleet']>, baseDir: string): FleetConfig {
  const { tls, ...etcd } = raw.etcd;
  const files = tls ? Object.fromEntries(Object.entries(tls).map(([k, v]) => [k, resolve(baseDir, v as string)])) : undefined;
  return { ...raw, instance: raw.instance ?? `${hostname()}-${process.pid}`, etcd: files ? { ...etcd, tls: files } : etcd };
}

/** `tls:` as far as it can be checked without reading the certificates (load-routes-file.ts reads them). */
function checkTls(raw: NonNullable<RawConfig['tls']>, plain: ListenAddress, problems: Problems, baseDir: string): TlsSettings {
  const listen = parseAddress(raw.listen, ['tls', 'listen'], problems);
  if (listen.port !== 0 && listen.port === plain.port && (listen.host === plain.host || isAnyAddress(listen.host) || isAnyAddress(plain.host))) {
    problems.add(['tls', 'listen'], `the HTTPS listener cannot share port ${listen.port} with listen (plain HTTP)`);
  }
  const hsts = raw.hsts ? `max-age=${raw.hsts.maxAgeS}${raw.hsts.includeSubDomains ? '; includeSubDomains' : ''}` : null;
  if (!raw.certificates && !raw.acme) problems.add(['tls'], 'needs certificates, acme or both: a TLS listener without a certificate serves nobody');
  return {
    listen, minVersion: raw.minVersion, http2: raw.http2, redirectHttp: raw.redirectHttp, hsts,
    certificates: (raw.certificates ?? []).map((c) => ({ cert: resolve(baseDir, c.cert), key: resolve(baseDir, c.key) })),
    acme: raw.acme ? checkAcme(raw.acme, problems, baseDir) : null,
  };
}

// A DNS name of letters, digits and hyphens, labels of 1-63 characters, at least two of them.
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** `tls.acme` as far as it can be checked without touching the disk (load-routes-file.ts checks storage and caFile). */
function checkAcme(raw: NonNullable<NonNullable<RawConfig['tls']>['acme']>, problems: Problems, baseDir: string): AcmeConfig {
  const at = (...rest: (string | number)[]) => ['tls', 'acme', ...rest];
  let url: URL | null = null;
  try { url = new URL(raw.directory); } catch { /* reported below */ }
  if (url === null || url.protocol !== 'https:') problems.add(at('directory'), `"${raw.directory}" is not an https:// URL (RFC 8555 §6.1: ACME is spoken over HTTPS)`);
  const seen = new Map<string, number>();
  const domains = raw.domains.map((d, i) => {
    let name = d.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    if (name.startsWith('*.')) problems.add(at('domains', i), `${d}: a wildcard needs the DNS-01 challenge, which Gantry does not answer (HTTP-01 and TLS-ALPN-01 prove one name each)`);
    else if (!DNS_NAME.test(name) || isIP(name) !== 0) problems.add(at('domains', i), `"${d}" is not a DNS name (letters, digits, hyphens; two labels or more)`);
    if (seen.has(name)) problems.add(at('domains', i), `${name} is also domains[${seen.get(name)}]`);
    seen.set(name, i);
    return name;
  });
  if (raw.retry.initialMs > raw.retry.maxMs) problems.add(at('retry', 'initialMs'), `must not exceed retry.maxMs (${raw.retry.maxMs})`);
  return {
    directory: raw.directory, email: raw.email ?? null, domains, storage: resolve(baseDir, raw.storage),
    caFile: raw.caFile === undefined ? null : resolve(baseDir, raw.caFile), challenges: raw.challenges, retry: raw.retry,
  };
}

const isAnyAddress = (host: string) => host === '0.0.0.0' || host === '::';

function checkRoutes(raw: RawConfig, problems: Problems): RouteConfig[] {
  const services = new Map(Object.entries(raw.services));
  const names = new Map<string, number>();
  const matchKeys = new Map<string, number>();
  return raw.routes.map((r, index) => {
    const at = (...rest: (string | number)[]) => ['routes', index, ...rest];
    const name = r.name ?? `route-${index}`;
    if (names.has(name)) problems.add(at('name'), `duplicate route name "${name}" (also routes[${names.get(name)}])`);
    names.set(name, index);

    const known = (name: string, path: (string | number)[]) => {
      const s = services.get(name);
      if (!s) problems.add(at(...path), `unknown service "${name}" (defined: ${[...services.keys()].join(', ')})`);
      return s;
    };
    if (r.service !== undefined && r.split !== undefined) problems.add(at('split'), 'use service or split, not both');
    if (r.service === undefined && r.split === undefined) problems.add(at(), 'a route needs a service (or a split)');
    if (r.stickyBy !== undefined && r.split === undefined) problems.add(at('stickyBy'), 'stickyBy needs a split');
    const split = r.split ?? null;
    if (split !== null) {
      if (split.every((side) => side.weight === 0)) problems.add(at('split'), 'at least one side needs a weight above 0');
      const seen = new Set<string>();
      split.forEach((side, i) => {
        if (seen.has(side.service)) problems.add(at('split', i, 'service'), `"${side.service}" is already a side of this split`);
        seen.add(side.service);
      });
    }
    const serviceName = r.service ?? split?.[0]?.service ?? '';
    const service = r.service !== undefined && split === null ? known(r.service, ['service']) : undefined;
    const sides = split?.map((side, i) => ({ side, config: known(side.service, ['split', i, 'service']) })) ?? [];

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
    r.policies.forEach((p, i) => {
      if (!Object.hasOwn(raw.policies, p)) problems.add(at('policies', i), `unknown policy "${p}" (defined: ${Object.keys(raw.policies).join(', ') || 'none'})`);
    });
    const hosts = (m.host === undefined ? [] : Array.isArray(m.host) ? m.host : [m.host]).map((h) => h.toLowerCase());
    const methods = [...(m.methods ?? [])].sort();

    const key = stableStringify({ hosts: [...hosts].sort(), path: m.path, exactPath: m.exactPath, pathRegex: m.pathRegex, methods, headers });
    if (matchKeys.has(key)) problems.add(at('match'), `same match as routes[${matchKeys.get(key)}]: this route could never be chosen`);
    matchKeys.set(key, index);

    const timeoutMs = r.timeoutMs ?? service?.timeoutMs ?? 15000;
    const sticky = r.stickyBy?.split(':');
    return {
      name, index, service: serviceName,
      split: split === null ? null : sides.map(({ side, config }) => {
        const sideTimeoutMs = r.timeoutMs ?? config?.timeoutMs ?? 15000;
        return { service: side.service, weight: side.weight, timeoutMs: sideTimeoutMs, tryTimeoutMs: tryTimeoutMs(config?.tryTimeoutMs, sideTimeoutMs, config?.retry.attempts ?? 1) };
      }),
      stickyBy: sticky === undefined ? null : { from: sticky[0] as 'cookie' | 'header', name: sticky[0] === 'header' ? (sticky[1] as string).toLowerCase() : sticky[1] as string },
      stripPrefix: r.stripPrefix, replacePrefix: r.replacePrefix, websocket: r.websocket,
      timeoutMs,
      tryTimeoutMs: tryTimeoutMs(service?.tryTimeoutMs, timeoutMs, service?.retry.attempts ?? 1),
      maxBodyBytes: r.maxBodyBytes ?? raw.server.maxBodyBytes,
      policies: r.policies,
      match: { hosts, path: m.path, exactPath: m.exactPath, pathRegex: m.pathRegex, methods, headers },
    };
  });
}
