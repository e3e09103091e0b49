import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { caFileProblem, storageProblem } from '../tls/acme-storage.js';
import { readCertificates } from '../tls/read-certificates.js';
import { readUpstreamTls } from '../tls/read-upstream-tls.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { buildScalingConfig, checkScalerDiscovery, SCALER_DISCOVERY_TYPE } from './scaling-config.js';
import { checkRoutesDocument, inFileOrder, Problems, type CheckedDocument, type PhaseClock, type RawService } from './check-routes-document.js';
import { deepFreeze } from './deep-freeze.js';
import type { GatewayConfig, RouteConfig, ServiceConfig, TlsConfig, UpstreamTlsConfig } from './gateway-config.js';
import { loadPluginModules } from './load-plugin-modules.js';
import { loadPolicies } from './load-policies.js';
import type { FromParseWorker, ParseWorkerData } from './routes-file-worker.js';
import { validatePluginOptions } from './schema-validator.js';
import { stableStringify } from './stable-stringify.js';
import { YamlLocations } from './yaml-locations.js';

export type { PhaseClock } from './check-routes-document.js';

/**
 * Files up to this many characters are checked in the calling thread. Why: starting a worker (an isolate that loads
 * yaml and compiles the schema) took 0.5-0.9 s on a busy 2-core machine, while a file of 16 KiB (about 150 routes)
 * was checked in-thread in 10-40 ms: small files keep the quick path (a burst of SIGHUPs 40 ms apart is not held up
 * by worker starts), large ones, whose parse would block for longer, go to a worker.
 */
export const IN_THREAD_MAX_CHARS = 16 * 1024;

/**
 * Reads and checks the file in a worker thread. Why: a reload of a 10 000-route file (1 MiB) blocked the event loop
 * for 2.0-3.5 s (bench/RESULTS.md, reload-stall), most of it the yaml package's parse (done twice) and the garbage
 * collection of its tree (a CPU profile of a load: 3.4 of 6.9 s in yaml, 2.3 s in the collector). The yaml Composer builds a
 * document in one call, so the parse cannot be cut into slices on the main thread; in a worker it costs the event loop
 * only the deserialization of the result. That is pulled one slice of routes per turn: a MessagePort with a listener
 * delivers every queued message in one turn (measured: a 215-380 ms block for 20 slices of 500 routes).
 */
async function checkInWorker(text: string, file: string, clock?: PhaseClock): Promise<CheckedDocument> {
  const { port1: slices, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./routes-file-worker.js', import.meta.url), { workerData: { text, file, slices: port2 } satisfies ParseWorkerData, transferList: [port2] });
  const answer = await new Promise<FromParseWorker>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the config parse worker exited (code ${code}) without an answer`)));
  });
  for (const [phase, ms] of Object.entries(answer.phasesMs)) clock?.record(phase, ms);
  clock?.lap('worker');
  const routes: RouteConfig[] = [];
  for (let m = receiveMessageOnPort(slices); m; m = receiveMessageOnPort(slices)) {
    for (const r of m.message as RouteConfig[]) routes.push(deepFreeze(r));
    await nextTurn();
  }
  slices.close();
  clock?.lap('receive');
  return { ...(answer.document as CheckedDocument), routes };
}

/** A routes file's text; an unreadable file is a ConfigError like any other problem of the file. */
export async function readRoutesFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 0, col: 0, path: '', message: `cannot read: ${(err as Error).message}` }], { cause: err });
  }
}

/**
 * Reads, parses and validates a routes file, loading the plugin modules it names first. Throws ConfigError listing
 * every problem with file:line:col. For a large file the parse and every check that needs no plugin run in a worker
 * thread (checkInWorker says why); the services, whose checks need the plugin registry, are built here.
 */
export async function loadRoutesFile(file: string, plugins: PluginRegistry, clock?: PhaseClock): Promise<GatewayConfig> {
  const text = await readRoutesFile(file);
  clock?.lap('read');
  return loadRoutesText(text, file, plugins, clock);
}

/**
 * loadRoutesFile on text already read from `file` (which still anchors relative paths and names the problems): a
 * cluster worker starts on the text the primary serves, not on what the file holds now.
 */
export async function loadRoutesText(text: string, file: string, plugins: PluginRegistry, clock?: PhaseClock): Promise<GatewayConfig> {
  const doc = text.length <= IN_THREAD_MAX_CHARS ? checkRoutesDocument(text, file, clock) : await checkInWorker(text, file, clock);
  if (doc.stage === 'syntax') throw new ConfigError(doc.problems);
  const loaded = await loadPluginModules(doc.plugins, file, plugins);
  if (loaded.problems.length) throw new ConfigError(loaded.problems);
  clock?.lap('plugins');
  const config = assembleConfig(doc, loaded.registry, loaded.origins);
  clock?.lap('services');
  return config;
}

/**
 * The same checks in this thread, for tests and callers that already hold the text. `plugins` must already hold any
 * third-party plugins the file names (loadRoutesFile loads them); `origins` maps their types to their modules.
 */
export function parseRoutes(text: string, file: string, plugins: PluginRegistry, origins: ReadonlyMap<string, string> = new Map()): GatewayConfig {
  return assembleConfig(checkRoutesDocument(text, file), plugins, origins);
}

/** Builds and checks the services with the plugin registry, then the whole config; throws with every problem. */
function assembleConfig(doc: CheckedDocument, plugins: PluginRegistry, origins: ReadonlyMap<string, string>): GatewayConfig {
  if (doc.stage !== 'checked' || !doc.settings) throw new ConfigError(doc.problems);
  const problems = new Problems(doc.file, new YamlLocations(doc.locations));
  const services = buildServices(doc, problems, plugins, origins);
  const tls = readTls(doc.settings.tls, problems);
  const policies = loadPolicies(doc.policies, problems, dirname(resolve(doc.file)), doc.settings.server.requestIdHeader.toLowerCase(), plugins, new Set(Object.keys(doc.services)));
  const all: ConfigProblem[] = [...doc.problems, ...problems.list];
  if (all.length) throw new ConfigError(inFileOrder(all));
  return deepFreeze({ file: doc.file, hash: configHash(doc.hash, tls, services, policies.fileTexts), ...doc.settings, tls, services, routes: doc.routes, policies: policies.byName, plugins });
}

/**
 * The file's hash, and with TLS files and the policies' files the hash of what they held: a reload after a
 * certificate, a CA or a keys file changed on disk is not "unchanged".
 */
function configHash(fileHash: string, tls: TlsConfig | null, services: ReadonlyMap<string, ServiceConfig>, policyFiles: readonly string[]): string {
  const pems: string[] = [...policyFiles];
  for (const c of tls?.certificates ?? []) pems.push(c.certPem, c.keyPem);
  for (const s of services.values()) if (s.tls) pems.push(s.tls.caPem ?? '', s.tls.certPem ?? '', s.tls.keyPem ?? '');
  return pems.length === 0 ? fileHash : createHash('sha256').update(fileHash).update(pems.join('\0')).digest('hex');
}

/** `tls:` with its certificates read and checked (gateway/tls/read-certificates.ts); problems at their entries. */
function readTls(settings: NonNullable<CheckedDocument['settings']>['tls'], problems: Problems): TlsConfig | null {
  if (!settings) return null;
  const read = readCertificates(settings.certificates, settings.minVersion);
  for (const p of read.problems) problems.add(['tls', 'certificates', p.index, p.field], p.message);
  const acme = settings.acme;
  if (acme) {
    const storage = storageProblem(acme.storage);
    if (storage) problems.add(['tls', 'acme', 'storage'], storage);
    const ca = acme.caFile === null ? null : caFileProblem(acme.caFile);
    if (ca) problems.add(['tls', 'acme', 'caFile'], ca);
    // One name, one certificate (as between the files): which one a client got would be a matter of order.
    acme.domains.forEach((domain, i) => {
      const owner = read.certificates.findIndex((c) => c.names.includes(domain));
      if (owner >= 0) problems.add(['tls', 'acme', 'domains', i], `${domain} is also a name of certificates[${owner}]: one name, one certificate`);
    });
  }
  return { ...settings, certificates: read.certificates };
}

function buildServices(doc: CheckedDocument, problems: Problems, plugins: PluginRegistry, origins: ReadonlyMap<string, string>): Map<string, ServiceConfig> {
  const services = new Map<string, ServiceConfig>();
  // Plugins resolve relative paths in their options from here, as core resolves its own (log file, admin token).
  const baseDir = dirname(resolve(doc.file));
  for (const [name, s] of Object.entries(doc.services)) {
    const base = ['services', name, 'discovery'];
    const { type, ...options } = s.discovery;
    const plugin = plugins.discovery(type);
    const report = (path: readonly (string | number)[], message: string, key?: string) => problems.add(path, message, key);
    const scaling = s.scaling ? buildScalingConfig(s.scaling, ['services', name, 'scaling'], plugins, report, baseDir) : null;
    checkScalerDiscovery(type, options, s.scaling, ['services', name], plugins, report);
    if (doc.settings?.fleet && s.scaling && plugins.scaler(s.scaling.scaler.type)?.providesEndpoints) {
      // Its instances would run on every gateway's own host, each set sized for the whole fleet.
      report(['services', name, 'scaling', 'scaler', 'type'], `the ${s.scaling.scaler.type} scaler runs instances on this gateway's own host and cannot serve a fleet (fleet:): use exec, webhook or kubernetes`);
    }
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
    const tls = s.tls ? readServiceTls(s.tls, ['services', name, 'tls'], baseDir, problems) : null;
    if (s.tryTimeoutMs !== undefined && s.tryTimeoutMs > s.timeoutMs) {
      problems.add(['services', name, 'tryTimeoutMs'], `must not exceed timeoutMs (${s.timeoutMs}), the deadline that includes retries`);
    }
    services.set(name, {
      name, balancer: s.balancer, timeoutMs: s.timeoutMs, maxSocketsPerEndpoint: s.maxSocketsPerEndpoint,
      idleSocketTimeoutMs: s.idleSocketTimeoutMs, warmTimeoutMs: s.warmTimeoutMs, hostHeader: s.hostHeader,
      hashOn: s.hashOn, slowStartMs: s.slowStartMs, tryTimeoutMs: s.tryTimeoutMs ?? null,
      connectTimeoutMs: s.connectTimeoutMs, protocol: s.protocol, tls, retry: s.retry, circuitBreaker: s.circuitBreaker,
      outlierDetection: s.outlierDetection, bulkhead: s.bulkhead, healthCheck: s.healthCheck ?? null,
      // A scaler-fed pool is keyed by its scaler too: new scaler options start a new set of instances.
      discovery: { type, options, baseDir, key: stableStringify(type === SCALER_DISCOVERY_TYPE ? { type, scaler: scaling?.scaler.key } : { type, options, baseDir, module: origins.get(type) }) },
      scaling,
    });
  }
  return services;
}

/** A service's `tls:` with its files read and checked (gateway/tls/read-upstream-tls.ts); problems at their fields. */
function readServiceTls(raw: NonNullable<RawService['tls']>, at: readonly (string | number)[], baseDir: string, problems: Problems): UpstreamTlsConfig {
  const path = (p: string | undefined) => p === undefined ? undefined : resolve(baseDir, p);
  const read = readUpstreamTls({ caFile: path(raw.caFile), certFile: path(raw.certFile), keyFile: path(raw.keyFile), serverName: raw.serverName });
  for (const p of read.problems) problems.add([...at, p.field], p.message);
  return read.tls;
}
