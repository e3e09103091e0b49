import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { processSnapshot } from '../admin/metrics.js';
import { loadRoutesText, readRoutesFile } from '../config/load-routes-file.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import { formatProblem, isConfigError } from '../errors.js';
import { openConfiguredLog, reopenLogFile } from '../logger.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { CLOSE_SLACK_MS, LOG_FINISH_MS, drainThenExit, exitOnFatalError } from '../process-exit.js';
import type { ToPrimary, ToWorker, WorkerPart } from './messages.js';
import { askWorker } from './ask-worker.js';
import { PrimaryRateLimits } from './cluster-rate-limiter.js';
import { ClusterReloads, prepareTimeoutMs, type ServingConfig } from './cluster-reloads.js';
import { PrimaryScaling } from './primary-scaling.js';
import { PrimaryHealthChecks } from './primary-health-checks.js';
import { TICKET_SECRET_ENV } from '../tls/ticket-keys.js';
import { AcmeRenewal, ServingAcmeRenewal } from '../tls/acme-renewal.js';

// A worker whose numbers take longer is left out of that answer (Prometheus' default scrape timeout is 10 s).
const COLLECT_TIMEOUT_MS = 3_000;
const RESTART_BACKOFF_MS = [250, 1000, 5000, 30_000];
// After a worker's own bound on its drain (its grace, closing, its log's last lines), how long it has to exit.
const WORKER_EXIT_SLACK_MS = 1_000;

export function workerCount(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`--workers takes a number from 1 to 256 or auto, not "${value}"`);
  return n;
}

/**
 * The cluster primary: validates the config once, forks the workers (each listens on the port with SO_REUSEPORT), restarts
 * a crashed one with backoff (a stale one it replaced on purpose at once), coordinates reloads in two phases (cluster-reloads.ts), gathers the workers' numbers
 * for whichever worker answers /metrics or the dashboard, and drains every worker on SIGTERM/SIGINT.
 * It serves no traffic itself; it runs the cluster's only scaling loop on the sum of the workers' load
 * (primary-scaling.ts) and the host's only active health checks (primary-health-checks.ts).
 */
/**
 * A port per host for a `listen` (or `tls.listen`) that says port 0, which every worker must bind. Each is reserved
 * by a listening socket with SO_REUSEPORT, which the workers' sockets join, held until the first worker is ready: a
 * probe closed before the workers bind left a moment in which another process could take the port (a worker then
 * failed with EADDRINUSE). A connection that reaches the reservation meanwhile is closed: the gateway is not up yet.
 */
async function reservePorts(hosts: readonly string[]): Promise<{ ports: number[]; release(): void }> {
  // Unref'd: a primary that gives up before any worker is ready is not kept alive by them.
  const servers = hosts.map((host) => net.createServer((socket) => socket.destroy()).listen({ port: 0, host, reusePort: true }).unref());
  await Promise.all(servers.map((server) => once(server, 'listening')));
  let held = true;
  return {
    ports: servers.map((server) => (server.address() as net.AddressInfo).port),
    release: () => {
      if (!held) return;
      held = false;
      for (const server of servers) server.close();
    },
  };
}

export async function runPrimary(file: string, count: number, plugins: PluginRegistry): Promise<void> {
  let config: GatewayConfig;
  // The text of the config the workers start on: a starting worker (a restarted one too) gets the serving text from
  // the primary (ClusterReloads.serving) rather than reading the file, which may hold edits not reloaded yet, or refused.
  let serving: ServingConfig;
  let log: Logger;
  try {
    const text = await readRoutesFile(file);
    config = await loadRoutesText(text, file, plugins);
    serving = { text, hash: config.hash, drainGraceMs: config.server.drainGraceMs };
    // The file's log settings, as a single process has them; the workers append to the same file.
    log = openConfiguredLog(config);
  } catch (err) {
    if (!isConfigError(err)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.exit(1);
  }
  // Structured clone, not JSON: the workers' numbers for /metrics carry their route counts in a Float64Array, which
  // is then copied as bytes (with 10 000 routes, JSON blocked the event loops for hundreds of ms per scrape).
  // Each worker binds its own socket on the data port with SO_REUSEPORT, and the kernel spreads new connections over
  // them by their addresses. Round-robin through the primary hung a connection handed to a worker that had just died
  // (one per SIGKILL, 10 of 10, 2 workers, 8 client loops opening connections), and one socket shared by all
  // (SCHED_NONE) let whichever worker woke first take them: 8 keep-alive connections opened at once served 7067:2001
  // requests per worker. With SO_REUSEPORT the same test served 380:420 and 400:400, and after a SIGKILL nothing hung
  // (the dead worker's queued connections are reset). The admin listener stays shared (SCHED_NONE: none hangs either).
  // The HTTPS listener likewise; its session tickets are encrypted with keys every worker derives from one secret, so
  // a client resumes on whichever worker its next connection reaches (gateway/tls/ticket-keys.ts).
  const addresses = config.tls ? [config.listen, config.tls.listen] : [config.listen];
  const reserved = await reservePorts(addresses.filter((a) => a.port === 0).map((a) => a.host));
  const picked = [...reserved.ports];
  const [listenPort, tlsPort] = addresses.map((a) => a.port || (picked.shift() as number)) as [number, number | undefined];
  const tlsEnv = tlsPort === undefined ? {} : { GANTRY_TLS_LISTEN_PORT: String(tlsPort), [TICKET_SECRET_ENV]: randomBytes(32).toString('hex') };
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ args: ['start', '-c', file], serialization: 'advanced' });
  let draining = false;
  const crashes = new Map<number, number>();   // slot → crashes in a row
  const slots = new Map<Worker, number>();
  // Workers that said 'ready': a message sent before a worker listens (it is still loading) is lost, so shutdown
  // waits for the 'ready' of a worker still starting before telling it to drain.
  const ready = new WeakSet<Worker>();
  // Workers given their config and not yet ready, with what resolves at their 'ready' or exit: a reload run waits
  // for them, so a worker that started on the old config takes part in the switch.
  const starting = new Map<Worker, Promise<void>>();
  const configured = new WeakMap<Worker, string>();   // the hash of the config each worker was given
  const scaling = new PrimaryScaling(plugins, log.child({ component: 'scaling' }), () => [...slots.keys()].filter((w) => w.isConnected()));
  // The scalers start before the workers, so a scaler-fed service has its instances when the workers warm up.
  scaling.start(config);
  // The host's one prober: every worker applies its verdicts (a worker not yet given its config gets them with it).
  const healthChecks = new PrimaryHealthChecks(plugins, log.child({ component: 'health-checks' }), (s) => scaling.scalerEndpoints(s), (verdict) => {
    for (const w of slots.keys()) if (w.isConnected()) w.send({ type: 'health-verdict', verdict } satisfies ToWorker);
  });
  await healthChecks.follow(config);
  // The rate-limit buckets of every worker (policies without rateLimitStore): the limit is the gateway's.
  const rateLimits = new PrimaryRateLimits();
  // Workers drained on purpose (a stale config): their exit is no crash.
  const replaced = new WeakSet<Worker>();
  // tls.acme: the primary alone orders; the workers serve what it stores and answer the challenges it publishes
  // there. It starts once a worker is ready, so the CA's validation finds a listener.
  const acmeLog = log.child({ component: 'acme' });
  const acme = new ServingAcmeRenewal((settings, minVersion) => new AcmeRenewal({ acme: settings, minVersion, log: acmeLog }));
  let acmeStarted = false;
  let acmeTls = config.tls;
  const reloads = new ClusterReloads({
    file, plugins, log, scaling, healthChecks, serving, prepareTimeoutMs: prepareTimeoutMs(),
    workers: () => slots.keys(),
    ready: (w) => ready.has(w),
    starting: () => Promise.all(starting.values()),
    replaceStale: (w) => replaceStale(w),
    applied: (next) => {
      acmeTls = next.tls;
      if (acmeStarted) acme.follow(acmeTls);
    },
  });

  function fork(slot: number): void {
    const worker = cluster.fork({ GANTRY_WORKER_SLOT: String(slot), GANTRY_LISTEN_PORT: String(listenPort), ...tlsEnv });
    slots.set(worker, slot);
    // A message sent as the worker dies fails (EPIPE) as an 'error' event: unhandled, it would end the primary. The
    // worker's 'exit' follows and is handled below.
    worker.on('error', (err: Error) => log.warn({ err, event: 'worker-message-failed', worker: worker.id }, 'a message to a worker failed'));
    let started!: () => void;
    const up = new Promise<void>((resolve) => { started = resolve; });
    worker.on('message', (m: ToPrimary) => {
      if (m.type === 'rate-limit') {
        if (worker.isConnected()) worker.send(rateLimits.answer(m.id, m.asks));
        return;
      }
      if (scaling.receive(worker, m)) return;
      if (m.type === 'config-request') {
        // During a reload run, the answer waits for its end: the worker starts on what the run leaves serving.
        void reloads.settled().then(() => {
          if (!worker.isConnected()) return;
          starting.set(worker, up);
          configured.set(worker, reloads.serving.hash);
          worker.send({ type: 'config', text: reloads.serving.text, unhealthy: healthChecks.unhealthy() } satisfies ToWorker);
        });
        return;
      }
      if (m.type === 'collect-request') {
        void collect(m.what).then((parts) => { if (worker.isConnected()) worker.send({ type: 'collect-answer', id: m.id, parts } satisfies ToWorker); });
        return;
      }
      if (m.type === 'reload-request') {
        void reloads.reload().then(({ run, result }) => { if (worker.isConnected()) worker.send({ type: 'reload-answer', id: m.id, run, result } satisfies ToWorker); });
        return;
      }
      if (m.type === 'ready') {
        reserved.release();   // the worker holds the ports now
        ready.add(worker);
        starting.delete(worker);
        started();
        if (draining) { worker.send({ type: 'shutdown' } satisfies ToWorker); return; }
        if (configured.get(worker) !== reloads.serving.hash) { replaceStale(worker); return; }
        crashes.set(slot, 0);
        scaling.workerReady(worker);
        if (!acmeStarted) { acmeStarted = true; acme.follow(acmeTls); }
        log.info({ event: 'worker-ready', worker: worker.id, pid: worker.process.pid }, 'worker ready');
      }
    });
    worker.once('exit', (code, signal) => {
      slots.delete(worker);
      starting.delete(worker);
      started();
      scaling.workerExited(worker.id);
      if (draining) return;
      if (replaced.has(worker)) {
        log.info({ event: 'worker-replaced', worker: worker.id, code, signal }, 'a stale worker drained; starting its replacement');
        fork(slot);
        return;
      }
      const n = (crashes.get(slot) ?? 0) + 1;
      crashes.set(slot, n);
      const delay = RESTART_BACKOFF_MS[Math.min(n - 1, RESTART_BACKOFF_MS.length - 1)] as number;
      log.error({ event: 'worker-exit', worker: worker.id, code, signal, restartInMs: delay }, 'worker exited; restarting it');
      setTimeout(() => { if (!draining) fork(slot); }, delay);
    });
  }
  /** A worker that came up so late that a reload run left it out would serve a config the others left: drained. */
  function replaceStale(worker: Worker): void {
    log.warn({ event: 'worker-stale', worker: worker.id }, 'a worker is on a config the others no longer serve; replacing it');
    replaced.add(worker);
    worker.send({ type: 'shutdown' } satisfies ToWorker);
  }
  for (let slot = 0; slot < count; slot++) fork(slot);
  log.info({ event: 'cluster-started', workers: count, pid: process.pid }, `gantry primary started with ${count} workers`);

  let collects = 0;
  /** Every ready worker's numbers, for a request that reached one of them; one that does not answer in time is left out. */
  async function collect(what: WorkerPart['what']): Promise<WorkerPart[]> {
    const id = ++collects;
    const workers = [...slots.keys()].filter((w) => ready.has(w));
    const answers = await Promise.all(workers.map((w) => askWorker(w, { type: 'collect', id, what }, 'collected', id, COLLECT_TIMEOUT_MS)));
    const missing = answers.filter((a) => a === null).length;
    if (missing) log.warn({ event: 'collect-incomplete', what, missing, workers: workers.length }, `${missing} worker(s) did not send their ${what} in time; this answer leaves them out`);
    const parts = answers.flatMap((a) => (a !== null && a !== 'gone' && a.type === 'collected' ? [a.part] : []));
    if (what === 'metrics') parts.push({ what, snapshot: await processSnapshot() });
    return parts;
  }

  /** Drains every worker (each bounds its own drain; one still there after that is killed), then stops the scalers. */
  async function drainWorkers(): Promise<number> {
    draining = true;
    await acme.stop();
    log.info({ event: 'draining', workers: slots.size }, 'draining every worker');
    let worst = 0;
    const exits = [...slots.keys()].map((w) => new Promise<void>((resolve) => {
      w.once('exit', (code) => { worst = Math.max(worst, code ?? 1); resolve(); });
      if (ready.has(w)) w.send({ type: 'shutdown' } satisfies ToWorker);
    }));
    const boundMs = reloads.serving.drainGraceMs + CLOSE_SLACK_MS + LOG_FINISH_MS + WORKER_EXIT_SLACK_MS;
    const kill = setTimeout(() => {
      for (const w of slots.keys()) {
        log.error({ event: 'worker-killed', worker: w.id, boundMs }, `worker still running ${boundMs} ms after it was told to drain; killing it`);
        w.process.kill('SIGKILL');
      }
    }, boundMs);
    await Promise.all(exits);
    clearTimeout(kill);
    await healthChecks.close();
    // Every worker is gone; then the scalers stop (the process scaler stops its instances, within its stopGraceMs).
    await scaling.close().catch((err: Error) => log.error({ err, event: 'scaling-close-failed' }, 'closing the scalers failed'));
    log.info({ event: 'stopped', exitCode: worst }, 'every worker stopped');
    return worst;
  }
  const stop = drainThenExit(log, drainWorkers);

  process.on('SIGHUP', () => { void reloads.reload(); });
  // logrotate renamed the log file: every process reopens it (without a handler SIGUSR2 would end the primary).
  process.on('SIGUSR2', () => {
    if (reopenLogFile(log)) log.info({ event: 'log-reopened' }, 'log file reopened');
    for (const w of slots.keys()) if (ready.has(w) && w.isConnected()) w.send({ type: 'reopen-log' } satisfies ToWorker);
  });
  process.once('SIGTERM', () => stop());
  process.once('SIGINT', () => stop());
  // The primary drains every worker and exits 1, for its supervisor to start the cluster afresh.
  exitOnFatalError(log, stop);
}
