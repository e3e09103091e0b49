import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { createBuiltinRegistry } from '../plugins/index.js';
import { createAdminServer } from './admin/admin-server.js';
import { loadRoutesFile } from './config/load-routes-file.js';
import { createLogger } from './logger.js';
import type { PluginRegistry } from './plugin-api/plugin-registry.js';
import type { Exchange } from './proxy/exchange.js';
import { createRequestHandler } from './proxy/handle-request.js';
import { createUpgradeHandler } from './proxy/handle-upgrade.js';
import { buildSnapshot, releaseSnapshot } from './runtime/build-snapshot.js';
import { Reloader, type ReloadOutcome } from './runtime/reloader.js';
import type { RuntimeSnapshot } from './runtime/runtime-snapshot.js';
import { SnapshotHolder } from './runtime/snapshot-holder.js';
import { applyLimits, createEdgeServer } from './server/edge-server.js';
import { EndpointRegistry } from './upstream/endpoint-registry.js';
import { LoadRecorder } from './load/load-recorder.js';
import { EndpointWait } from './scaling/endpoint-wait.js';
import { ScalingLoop } from './scaling/scaling-loop.js';
import { PoolManager } from './upstream/pool-manager.js';

export interface GatewayOptions {
  readonly configFile: string;
  readonly plugins?: PluginRegistry;
  readonly log?: Logger;
  /** Overrides `listen` from the file (tests use port 0). */
  readonly listen?: { host: string; port: number };
  /** Overrides `admin` from the file; null turns the admin listener off. */
  readonly admin?: { host: string; port: number } | null;
}

export interface Gateway {
  readonly log: Logger;
  /** The data-plane address actually bound. */
  address(): AddressInfo;
  adminAddress(): AddressInfo | null;
  current(): RuntimeSnapshot;
  /** Autoscaling: `recentDecisions()` and `status()` for the admin API (docs/scaling.md). */
  readonly scaling: ScalingLoop;
  /** Per-service load signals (request rate, in flight, latency percentiles, errors, waiting). */
  readonly load: LoadRecorder;
  reload(): Promise<ReloadOutcome>;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), closes everything. */
  shutdown(graceMs?: number): Promise<{ forced: boolean }>;
}

async function listen(server: http.Server, host: string, port: number): Promise<void> {
  server.listen(port, host);
  await once(server, 'listening');
}

/** Loads the config (throws ConfigError), warms it, binds the listeners. The caller wires signals. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const plugins = options.plugins ?? createBuiltinRegistry();
  const config = await loadRoutesFile(options.configFile, plugins);
  const log = options.log ?? createLogger(config.log.level);
  log.level = config.log.level;
  const accessLogger = log.child({ log: 'access' });
  let accessLog: Logger | null = config.log.access ? accessLogger : null;

  const registry = new EndpointRegistry();
  const holder = new SnapshotHolder();
  // Load signals from every routed request drive the scaling loop; a scaler may also be a service's discovery source.
  const load = new LoadRecorder();
  const scaling = new ScalingLoop({
    plugins, load, log: log.child({ component: 'scaling' }),
    readyEndpoints: (service) => holder.current?.services.get(service)?.pool.endpoints.length ?? 0,
  });
  const wait = new EndpointWait(load, (service) => scaling.wake(service), log.child({ component: 'scaling' }));
  const pools = new PoolManager(plugins, registry, log, Date.now, (s) => scaling.scalerEndpoints(s));
  const first = await buildSnapshot(config, 1, pools, log);
  holder.swap(first, () => {});
  scaling.sync(first.config);

  let draining = false;
  const handlerContext = {
    holder, registry, log, accessLog: () => accessLog, draining: () => draining,
    routed: (ex: Exchange) => load.routed(ex), observe: (ex: Exchange) => load.observe(ex), wait,
  };
  const handlers = createRequestHandler(handlerContext);
  // Upgraded sockets leave the HTTP server's bookkeeping (closeAllConnections does not see them): track them here.
  const tunnels = new Set<Duplex>();
  const upgrade = createUpgradeHandler(handlerContext, handlers);
  const server = createEdgeServer(config.server, handlers, (req, socket, head) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    upgrade(req, socket, head);
  });
  const admin = createAdminServer({
    ready: () => !draining && holder.current !== undefined,
    draining: () => draining,
    generation: () => holder.current?.generation ?? 0,
  });

  const reloader = new Reloader({
    file: options.configFile, plugins, pools, holder, log,
    onApplied: (snapshot) => {
      applyLimits(server, snapshot.config.server);
      scaling.sync(snapshot.config);
      log.level = snapshot.config.log.level;
      accessLog = snapshot.config.log.access ? accessLogger : null;
    },
  });

  const listenAt = options.listen ?? config.listen;
  const adminAt = options.admin === undefined ? config.admin : options.admin;
  try {
    await listen(server, listenAt.host, listenAt.port);
    if (adminAt) await listen(admin, adminAt.host, adminAt.port);
  } catch (err) {
    server.close();
    await releaseSnapshot(first, pools);
    await scaling.close();
    throw err;
  }
  scaling.start();
  log.info({ event: 'started', listen: server.address(), admin: adminAt ? admin.address() : null, generation: 1, routes: config.routes.length, services: config.services.size }, 'gantry started');

  let shuttingDown: Promise<{ forced: boolean }> | undefined;
  async function shutdown(graceMs = holder.current?.config.server.drainGraceMs ?? 30_000): Promise<{ forced: boolean }> {
    draining = true;
    log.info({ event: 'draining', graceMs }, 'draining: no new connections; finishing requests in flight');
    // Requests still waiting for a first endpoint get their 503 now rather than at the end of the grace.
    wait.close();
    // Stop accepting now; idle keep-alive connections close at once, busy ones after their response (which carries
    // Connection: close while draining).
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const forced = await Promise.race([
      closed.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(resolve, graceMs, true); }),
    ]);
    clearTimeout(timer);
    if (forced) {
      log.warn({ event: 'drain-timeout', graceMs }, 'drain grace over: closing the remaining connections');
      server.closeAllConnections();
      for (const socket of tunnels) socket.destroy();
      await closed;
    }
    admin.close();
    admin.closeAllConnections();
    handlers.close();
    await pools.closeAll();
    await scaling.close();
    registry.destroyAll();
    log.info({ event: 'stopped', forced }, 'gantry stopped');
    return { forced };
  }

  return {
    log,
    address: () => server.address() as AddressInfo,
    adminAddress: () => (adminAt ? (admin.address() as AddressInfo) : null),
    current: () => holder.current as RuntimeSnapshot,
    scaling,
    load,
    reload: () => reloader.reload(),
    shutdown: (graceMs) => (shuttingDown ??= shutdown(graceMs)),
  };
}
