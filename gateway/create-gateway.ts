import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { AdminToken } from './admin/admin-auth.js';
import { createAdminServer } from './admin/admin-server.js';
import type { ReloadResult } from './admin/config-metrics.js';
import { GatewayMetrics } from './admin/metrics.js';
import type { Exposition } from './admin/request-series.js';
import { localTrafficAndHealth, type TrafficAndHealth } from './admin/traffic-and-health.js';
import { loadRoutesFile, loadRoutesText } from './config/load-routes-file.js';
import type { ErrorCode } from './errors.js';
import { openConfiguredLog, reopenLogFile } from './logger.js';
import type { PluginRegistry } from './plugin-api/plugin-registry.js';
import { GcraTable } from './policies/gcra.js';
import type { PolicyRuntime } from './policies/policy.js';
import type { RateLimiter } from './policies/rate-limiter.js';
import { SharedResources } from './policies/shared-resources.js';
import { createAccessLog, type AccessLog } from './proxy/access-log.js';
import type { Exchange } from './proxy/exchange.js';
import { createRequestHandler } from './proxy/handle-request.js';
import { createUpgradeHandler } from './proxy/handle-upgrade.js';
import { buildSnapshot, closePolicies, commitSnapshot } from './runtime/build-snapshot.js';
import { Reloader, type PreparedReload, type ReloadOutcome } from './runtime/reloader.js';
import type { RuntimeSnapshot } from './runtime/runtime-snapshot.js';
import { SnapshotHolder } from './runtime/snapshot-holder.js';
import { TracingSwitch } from './tracing/tracing-switch.js';
import { applyLimits, createEdgeServer, type EdgeServer } from './server/edge-server.js';
import { closeAllConnections, closeIdleConnections } from './server/http2-sessions.js';
import type { AcmeChallengeFiles } from './tls/acme-challenges.js';
import type { HttpsRedirect } from './tls/https-redirect.js';
import { ticketSecret } from './tls/ticket-keys.js';
import { TlsListener } from './tls/tls-listener.js';
import { AcmeRenewal, ServingAcmeRenewal } from './tls/acme-renewal.js';
import { gantryVersion } from './version.js';
import { EndpointRegistry } from './upstream/endpoint-registry.js';
import { LoadRecorder } from './signals/load-recorder.js';
import { EndpointHold } from './scaling/endpoint-hold.js';
import type { ScalingControl, ScalingDeps, ScalingProvider, ScalingView } from './scaling/scaling-control.js';
import { ScalingLoop } from './scaling/scaling-loop.js';
import { FleetScaling, type FleetView } from './fleet/fleet-scaling.js';
import { PoolManager } from './upstream/pool-manager.js';
import type { HealthVerdicts } from './upstream/health-verdicts.js';

export interface GatewayOptions {
  readonly configFile: string;
  /** The file's text to start on instead of reading it (cluster workers: the primary's serving config). */
  readonly configText?: string;
  readonly plugins: PluginRegistry;
  /** The logger; by default the file's `log` settings are opened (createLogger). */
  readonly log?: Logger;
  /** Fields on every line of the default logger (a cluster worker's `worker`). */
  readonly logBindings?: Record<string, unknown>;
  /** Overrides `listen` from the file (tests use port 0). */
  readonly listen?: { host: string; port: number };
  /**
   * Cluster workers: the data listener binds a socket of its own on this port with SO_REUSEPORT, beside the other
   * workers' (the port the primary chose for the file's `listen`, which may say port 0).
   */
  readonly reusePort?: number;
  /** Cluster workers: the same for the HTTPS listener (`tls.listen`). */
  readonly reuseTlsPort?: number;
  /** Overrides `admin` from the file; null turns the admin listener off. */
  readonly admin?: { host: string; port: number } | null;
  /** Cluster workers: the primary runs the only scaling loop (gateway/cluster/worker-scaling.ts). */
  readonly scaling?: ScalingProvider;
  /** Cluster workers: the primary's fleet, as it last told them (/admin/fleet, the fleet's metrics). */
  readonly fleet?: FleetView;
  /** Cluster workers: the verdicts of the primary's health checks, which alone probe for the host (no checks of its own). */
  readonly healthVerdicts?: HealthVerdicts;
  /** Cluster workers: what the admin API answers for the whole cluster, by way of the primary (gateway/cluster/). */
  readonly cluster?: ClusterAdmin;
  /** Cluster workers: the rate-limit buckets the primary keeps for every worker (default: this process's own). */
  readonly rateLimiter?: RateLimiter;
  /**
   * false: another process orders the certificates of `tls.acme` (a cluster's primary) and this one only serves
   * them and answers the challenges, from the storage directory. Default true.
   */
  readonly acmeOrders?: boolean;
}

export interface ClusterAdmin {
  /** POST /admin/reload: every worker reloads together; a worker reloading alone could serve a config others do not. */
  reload(): Promise<ReloadOutcome>;
  /** GET /metrics: the sum over every worker. */
  exposeMetrics(): Promise<Exposition>;
  /** /admin/services and /admin/stats: every worker's traffic and health together. */
  trafficAndHealth(): Promise<TrafficAndHealth>;
}

export interface Gateway {
  readonly log: Logger;
  /** The data-plane address actually bound. */
  address(): AddressInfo;
  /** The HTTPS listener's address; null without `tls:`. */
  tlsAddress(): AddressInfo | null;
  adminAddress(): AddressInfo | null;
  /** Every metric, and the API that resilience and scaling code report through. */
  readonly metrics: GatewayMetrics;
  current(): RuntimeSnapshot;
  /** Autoscaling: `recentDecisions()` and `status()` for the admin API (docs/scaling.md). */
  readonly scaling: ScalingView;
  /** Per-service load signals (request rate, in flight, latency percentiles, errors, waiting). */
  readonly load: LoadRecorder;
  /** SIGHUP of a single process: reloads this gateway, then re-reads the admin token. */
  reload(): Promise<ReloadOutcome>;
  /** First phase of a coordinated reload (cluster workers): validated, built and warmed, not yet serving. */
  prepareReload(expectedHash?: string): Promise<PreparedReload>;
  /** A cluster worker, when the primary's reload run ended: records its outcome and re-reads the admin token. */
  clusterReloaded(result: ReloadResult): Promise<void>;
  /** Reopens the log file after logrotate renamed it (SIGUSR2); a no-op when logging to stdout. */
  reopenLog(): void;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), closes everything. */
  shutdown(graceMs?: number): Promise<{ forced: boolean }>;
}

/**
 * One part of a running gateway. The parts start in order and stop in reverse: on shutdown, or when a later part
 * fails to start (a part whose own start failed has nothing to stop), as Caddy starts and stops its modules.
 */
interface Part {
  readonly name: string;
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
}

async function startInOrder(parts: readonly Part[]): Promise<void> {
  for (let i = 0; i < parts.length; i++) {
    try {
      await parts[i]!.start?.();
    } catch (err) {
      await stopInReverse(parts.slice(0, i));
      throw err;
    }
  }
}

async function stopInReverse(parts: readonly Part[]): Promise<void> {
  for (const part of [...parts].reverse()) await part.stop?.();
}

async function listen(server: EdgeServer, host: string, port: number, reusePort = false): Promise<void> {
  // exclusive: a cluster worker binds this socket itself instead of sharing one through the primary.
  server.listen(reusePort ? { port, host, reusePort, exclusive: true } : { port, host });
  await once(server, 'listening');
}

/**
 * Stops accepting and lets the requests in flight finish, up to `graceMs`; then closes what is left, upgraded
 * sockets (WebSocket tunnels) included. True when the grace ran out.
 */
async function drain(servers: readonly EdgeServer[], tunnels: Set<Duplex>, graceMs: number, log: Logger): Promise<boolean> {
  // Idle keep-alive connections close at once, busy ones after their response (which carries Connection: close
  // while draining). An HTTP/2 session gets GOAWAY from close() and ends once its open streams have.
  const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  for (const server of servers) closeIdleConnections(server);
  let timer: NodeJS.Timeout | undefined;
  const forced = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((resolve) => { timer = setTimeout(resolve, graceMs, true); }),
  ]);
  clearTimeout(timer);
  if (forced) {
    log.warn({ event: 'drain-timeout', graceMs }, 'drain grace over: closing the remaining connections');
    for (const server of servers) closeAllConnections(server);
    for (const socket of tunnels) socket.destroy();
    await closed;
  }
  return forced;
}

/**
 * Provision → validate → start: loads the config (throws ConfigError) and checks what needs more than the file (the
 * admin token for the address actually bound); creates the parts, the metrics before everything that reports to
 * them, none of them listening, running or connecting yet; then starts them in order. The caller wires signals.
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  // ---- provision and validate the config ---------------------------------------------------------------------------
  const { plugins } = options;
  const config = await (options.configText === undefined ? loadRoutesFile(options.configFile, plugins) : loadRoutesText(options.configText, options.configFile, plugins));
  const log = options.log ?? openConfiguredLog(config, options.logBindings);
  log.level = config.log.level;
  let accessFormat = config.log.accessFormat;
  let accessLogger = createAccessLog(log, accessFormat);
  let accessLog: AccessLog | null = config.log.access ? accessLogger : null;
  const startedAt = Date.now();
  const version = gantryVersion();
  const listenAt = options.listen ?? config.listen;
  const adminAt = options.admin === undefined ? config.admin : options.admin;
  // A missing token is a start error, never an open admin listener.
  const adminToken = new AdminToken(adminAt, log);
  await adminToken.load(config);

  // ---- provision the parts -----------------------------------------------------------------------------------------
  const holder = new SnapshotHolder();
  const metrics = new GatewayMetrics({ current: () => holder.current, version });
  const registry = new EndpointRegistry(metrics.upstreams, options.healthVerdicts);
  // Load signals from every routed request drive the scaling loop; a scaler may also be a service's discovery source.
  const load = new LoadRecorder(options.scaling?.clock);
  const scalingDeps: ScalingDeps = {
    load, log: log.child({ component: 'scaling' }), observer: metrics.scaling,
    readyEndpoints: (service) => holder.current?.services.get(service)?.pool.endpoints.length ?? 0,
  };
  // In a fleet the loop sums the fleet's load and acts only while this gateway leads (gateway/fleet/).
  const fleet = !options.scaling && config.fleet
    ? new FleetScaling({ fleet: config.fleet, plugins, own: load, ...scalingDeps, version, generation: () => holder.current?.generation ?? 0 })
    : null;
  const fleetView = config.fleet ? options.fleet ?? fleet : null;
  if (fleetView) metrics.fleet.follow(fleetView);
  const scaling: ScalingControl = options.scaling?.create(scalingDeps) ?? fleet ?? new ScalingLoop({ plugins, ...scalingDeps });
  const hold = new EndpointHold(load, (service) => scaling.wake(service), log.child({ component: 'scaling' }));
  const pools = new PoolManager(plugins, registry, log, Date.now, (s) => scaling.scalerEndpoints(s), options.healthVerdicts === undefined);
  // What the routes' policies keep across reloads and report to (docs/policies.md).
  const policyLog = log.child({ component: 'policies' });
  const shared = new SharedResources(policyLog);
  const policyRuntime: PolicyRuntime = {
    log: policyLog, events: metrics.policies, localLimiter: options.rateLimiter ?? new GcraTable(),
    share: (key, make, close) => shared.share(key, make, close),
  };

  // tracing.spans: the OpenTelemetry SDK is loaded the first time a config turns it on (gateway/tracing/).
  const tracing = new TracingSwitch({ log: log.child({ component: 'tracing' }), counts: metrics.tracing, version });
  let draining = false;
  const requests = metrics.requests;
  // tls.redirectHttp: the TLS listener sets the port the plain one redirects to (gateway/tls/https-redirect.ts).
  const httpsRedirect: HttpsRedirect = { port: 0 };
  // tls.acme: the challenge files, set by the TLS listener from the serving config (gateway/tls/acme-challenges.ts).
  const acmeChallenges: AcmeChallengeFiles = { http01Dir: null, alpnDir: null, domains: new Set() };
  const handlerContext = {
    httpsRedirect, acmeChallenges,
    holder, registry, log, accessLog: () => accessLog, draining: () => draining,
    routed: (ex: Exchange) => load.routed(ex),
    observe: (ex: Exchange) => { requests.requestFinished(ex); load.observe(ex); },
    answeredOnSocket: (code: ErrorCode) => requests.answeredOnSocket(code),
    events: metrics.upstreams,
    hold,
    tracing,
  };
  const handlers = createRequestHandler(handlerContext);
  // Upgraded sockets leave the HTTP server's bookkeeping (closeAllConnections does not see them): track them here.
  const tunnels = new Set<Duplex>();
  const upgrade = createUpgradeHandler(handlerContext, handlers);
  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    upgrade(req, socket, head);
  };
  const server = createEdgeServer(config.server, handlers, onUpgrade);
  // The HTTPS listener (docs/tls.md): the same handlers over TLS, its certificates live-reloaded (gateway/tls/).
  const tls = config.tls ? new TlsListener({ config: config.tls, limits: config.server, handlers, onUpgrade, log, redirect: httpsRedirect, ticketSecret: ticketSecret(), acmeChallenges }) : null;
  // tls.acme: certificates ordered and renewed here, unless another process does (acmeOrders: false).
  const acmeLog = log.child({ component: 'acme' });
  const acmeRenewal = new ServingAcmeRenewal((acme, minVersion) => new AcmeRenewal({ acme, minVersion, log: acmeLog, issued: () => tls?.acmeIssued() }));
  const admin = createAdminServer({
    // The admin listener starts first: ready once the data listener has too.
    ready: () => !draining && server.listening && holder.current !== undefined,
    draining: () => draining,
    generation: () => holder.current?.generation ?? 0,
    current: () => holder.current,
    metrics,
    scaling,
    fleet: fleetView,
    exposeMetrics: async () => (options.cluster ? options.cluster.exposeMetrics() : metrics.expose()),
    trafficAndHealth: async () => (options.cluster ? options.cluster.trafficAndHealth() : localTrafficAndHealth(metrics)),
    reload: () => (options.cluster ? options.cluster.reload() : reload()),
    token: () => adminToken.token,
    version,
    startedAt,
    log,
  });
  const reloader = new Reloader({
    file: options.configFile, plugins, pools, policies: policyRuntime, holder, log,
    onApplied: (snapshot) => {
      applyLimits(server, snapshot.config.server);
      tls?.apply(snapshot.config.tls, snapshot.config.server);
      if (tls && options.acmeOrders !== false) acmeRenewal.follow(snapshot.config.tls);
      scaling.sync(snapshot.config);
      log.level = snapshot.config.log.level;
      if (snapshot.config.log.accessFormat !== accessFormat) {
        accessLogger.flush();   // the lines of this turn in the format they were made in
        accessFormat = snapshot.config.log.accessFormat;
        accessLogger = createAccessLog(log, accessFormat);
      }
      accessLog = snapshot.config.log.access ? accessLogger : null;
      void tracing.apply(snapshot.config.tracing);
      metrics.configLoaded(snapshot);
    },
    onOutcome: (outcome) => metrics.config.reload(outcome),
    onTiming: (timing) => metrics.config.reloadTiming(timing),
  });

  /** SIGHUP and POST /admin/reload: the config, then the admin token (rotating the token file needs only a reload). */
  async function reload(): Promise<ReloadOutcome> {
    const outcome = await reloader.reload();
    await adminToken.reread(holder.current?.config ?? config);
    return outcome;
  }

  // ---- start, in order; stopped in reverse ------------------------------------------------------------------------
  let graceMs = 0;
  let forced = false;
  const parts: Part[] = [
    // Stopped after the last request: the spans still queued go out (bounded in time).
    { name: 'tracing', start: () => tracing.apply(config.tracing), stop: () => tracing.close() },
    { name: 'endpoints', stop: () => registry.destroyAll() },
    { name: 'scaling', stop: () => scaling.close() },
    {
      name: 'serving config',
      // Built and warmed (first endpoints from discovery) before any listener takes a request.
      start: async () => {
        const first = await buildSnapshot(config, 1, pools, policyRuntime, log);
        holder.swap(first, () => {});
        commitSnapshot(first, pools);
        metrics.configLoaded(first);
        scaling.sync(first.config);
      },
      stop: async () => {
        await pools.closeAll();
        if (holder.current) await closePolicies(holder.current.policies);
        // What a config still retiring holds (a Redis client): closed last, nothing uses it any more.
        await shared.closeAll();
      },
    },
    {
      name: 'admin listener',
      start: () => (adminAt ? listen(admin, adminAt.host, adminAt.port) : undefined),
      stop: () => { admin.close(); admin.closeAllConnections(); },
    },
    {
      // Before the plain listener, whose redirect points at it (tls-listener.ts).
      name: 'TLS listener',
      start: async () => {
        if (!tls || !config.tls) return;
        await listen(tls.server, config.tls.listen.host, options.reuseTlsPort ?? config.tls.listen.port, options.reuseTlsPort !== undefined);
        tls.started();
      },
      // The data listener's drain closes its server with the plain one's; here its watcher and key rotation stop.
      stop: () => tls?.close(),
    },
    {
      name: 'data listener',
      start: () => listen(server, listenAt.host, options.reusePort ?? listenAt.port, options.reusePort !== undefined),
      stop: async () => {
        draining = true;
        log.info({ event: 'draining', graceMs }, 'draining: no new connections; finishing requests in flight');
        // Requests still waiting for a first endpoint get their 503 now rather than at the end of the grace.
        hold.close();
        forced = await drain(tls ? [server, tls.server] : [server], tunnels, graceMs, log);
      },
    },
    {
      // Once both listeners answer challenges; stopped before the drain, so no order outlives the gateway.
      name: 'ACME renewal',
      start: () => { if (tls && options.acmeOrders !== false) acmeRenewal.follow(config.tls); },
      stop: () => acmeRenewal.stop(),
    },
    { name: 'scaling loop', start: () => scaling.start() },
  ];
  await startInOrder(parts);
  log.info({ event: 'started', pid: process.pid, listen: server.address(), tls: tls?.address(), admin: adminAt ? admin.address() : null, generation: 1, routes: config.routes.length, services: config.services.size }, 'gantry started');

  let shuttingDown: Promise<{ forced: boolean }> | undefined;
  async function shutdown(grace = holder.current?.config.server.drainGraceMs ?? 30_000): Promise<{ forced: boolean }> {
    graceMs = grace;
    await stopInReverse(parts);
    accessLogger.flush();
    log.info({ event: 'stopped', forced }, 'gantry stopped');
    return { forced };
  }

  return {
    log,
    address: () => server.address() as AddressInfo,
    tlsAddress: () => tls?.address() ?? null,
    adminAddress: () => (adminAt ? (admin.address() as AddressInfo) : null),
    current: () => holder.current as RuntimeSnapshot,
    metrics,
    scaling,
    load,
    reload,
    prepareReload: (expectedHash) => reloader.prepare(expectedHash),
    clusterReloaded: async (result) => {
      metrics.config.reload({ ...result, generation: holder.current?.generation ?? 0 });
      await adminToken.reread(holder.current?.config ?? config);
    },
    reopenLog: () => {
      accessLogger.flush();   // this turn's lines belong to the file that was current when they were made
      if (reopenLogFile(log)) log.info({ event: 'log-reopened' }, 'log file reopened');
    },
    shutdown: (graceMs) => (shuttingDown ??= shutdown(graceMs)),
  };
}
