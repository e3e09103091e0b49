import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { loadRoutesText, readRoutesFile } from '../config/load-routes-file.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import { formatProblem, isConfigError } from '../errors.js';
import { openConfiguredLog, reopenLogFile } from '../logger.js';
import type { ReloadResult } from '../admin/metrics.js';
import type { ToPrimary, ToWorker, WorkerFigures } from './messages.js';
import { PrimaryScaling, type PreparedScaling } from './primary-scaling.js';

const PREPARE_TIMEOUT_MS = 30_000;
// A worker whose figures take longer is left out of that answer (Prometheus' default scrape timeout is 10 s).
const COLLECT_TIMEOUT_MS = 3_000;
const RESTART_BACKOFF_MS = [250, 1000, 5000, 30_000];

export function workerCount(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`--workers takes a number from 1 to 256 or auto, not "${value}"`);
  return n;
}

/**
 * The cluster primary: validates the config once, forks the workers (they share the listening socket), restarts
 * a crashed one with backoff, coordinates reloads in two phases, and drains every worker on SIGTERM/SIGINT.
 * It serves no traffic itself; it runs the cluster's only scaling loop on the sum of the workers' load
 * (primary-scaling.ts).
 */
export async function runPrimary(file: string, count: number): Promise<void> {
  const plugins = createBuiltinRegistry();
  let config: GatewayConfig;
  // The text of the config the workers serve: a starting worker (a restarted one too) gets it rather than reading
  // the file, which may hold edits not reloaded yet, or refused.
  let serving: { text: string; hash: string };
  let log: Logger;
  try {
    const text = await readRoutesFile(file);
    config = await loadRoutesText(text, file, plugins);
    serving = { text, hash: config.hash };
    // The file's log settings, as a single process has them; the workers append to the same file.
    log = openConfiguredLog(config);
  } catch (err) {
    if (!isConfigError(err)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.exit(1);
  }
  cluster.setupPrimary({ args: ['start', '-c', file] });
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

  function fork(slot: number): void {
    const worker = cluster.fork({ GANTRY_WORKER_SLOT: String(slot) });
    slots.set(worker, slot);
    let started!: () => void;
    const up = new Promise<void>((resolve) => { started = resolve; });
    worker.on('message', (m: ToPrimary) => {
      if (scaling.receive(worker, m)) return;
      if (m.type === 'config-request') {
        // During a reload run, the answer waits for its end: the worker starts on what the run leaves serving.
        void settled().then(() => {
          if (!worker.isConnected()) return;
          starting.set(worker, up);
          configured.set(worker, serving.hash);
          worker.send({ type: 'config', text: serving.text } satisfies ToWorker);
        });
        return;
      }
      if (m.type === 'collect-request') {
        void collect(m.what).then((parts) => { if (worker.isConnected()) worker.send({ type: 'collect-answer', id: m.id, parts } satisfies ToWorker); });
        return;
      }
      if (m.type === 'reload-request') {
        void reload().then(({ run, result }) => { if (worker.isConnected()) worker.send({ type: 'reload-answer', id: m.id, run, result } satisfies ToWorker); });
        return;
      }
      if (m.type === 'ready') {
        ready.add(worker);
        starting.delete(worker);
        started();
        if (draining) { worker.send({ type: 'shutdown' } satisfies ToWorker); return; }
        if (configured.get(worker) !== serving.hash) { replaceStale(worker); return; }
        crashes.set(slot, 0);
        scaling.workerReady(worker);
        log.info({ event: 'worker-ready', worker: worker.id, pid: worker.process.pid }, 'worker ready');
      }
    });
    worker.once('exit', (code, signal) => {
      slots.delete(worker);
      starting.delete(worker);
      started();
      scaling.workerExited(worker.id);
      if (draining) return;
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
    worker.send({ type: 'shutdown' } satisfies ToWorker);
  }
  for (let slot = 0; slot < count; slot++) fork(slot);
  log.info({ event: 'cluster-started', workers: count, pid: process.pid }, `gantry primary started with ${count} workers`);

  let runs = 0;
  let running: Promise<ReloadResult> | null = null;
  let queued: Promise<{ run: number; result: ReloadResult }> | null = null;

  /** The worker's answer; null if none came in time; 'gone' if it exited (it restarts on the run's outcome). */
  function ask(worker: Worker, message: ToWorker, expect: ToPrimary['type'], id: number, timeoutMs = PREPARE_TIMEOUT_MS): Promise<ToPrimary | null | 'gone'> {
    return new Promise((resolve) => {
      const done = (answer: ToPrimary | null | 'gone') => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        resolve(answer);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      function onMessage(m: ToPrimary) {
        if (m.type === expect && 'id' in m && m.id === id) done(m);
      }
      const onExit = () => done('gone');
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      if (worker.isConnected()) worker.send(message);
      else done('gone');
    });
  }

  let collects = 0;
  /** Every ready worker's figures, for a request that reached one of them; one that does not answer in time is left out. */
  async function collect(what: WorkerFigures['what']): Promise<WorkerFigures[]> {
    const id = ++collects;
    const workers = [...slots.keys()].filter((w) => ready.has(w));
    const answers = await Promise.all(workers.map((w) => ask(w, { type: 'collect', id, what }, 'collected', id, COLLECT_TIMEOUT_MS)));
    const missing = answers.filter((a) => a === null).length;
    if (missing) log.warn({ event: 'collect-incomplete', what, missing, workers: workers.length }, `${missing} worker(s) did not send their ${what} in time; this answer leaves them out`);
    return answers.flatMap((a) => (a !== null && a !== 'gone' && a.type === 'collected' ? [a.part] : []));
  }

  /** Resolves when no reload run is going on. */
  function settled(): Promise<unknown> {
    return queued ?? running ?? Promise.resolve();
  }

  /** Every worker records the cluster's outcome (its own generation filled in), whoever decided it. */
  function announce(run: number, result: ReloadResult): ReloadResult {
    for (const w of slots.keys()) if (w.isConnected()) w.send({ type: 'reload-result', run, result } satisfies ToWorker);
    return result;
  }

  /** One reload run over every worker: validate once, prepare everywhere, then commit on all or abort on all. */
  async function reloadOnce(run: number): Promise<ReloadResult> {
    let next: GatewayConfig;
    let text: string;
    try {
      text = await readRoutesFile(file);
      next = await loadRoutesText(text, file, plugins);
    } catch (err) {
      const problems = isConfigError(err) ? err.problems : [];
      const message = isConfigError(err) ? problems.map(formatProblem).join('; ') : `cannot read the config: ${(err as Error).message}`;
      log.error({ event: 'reload-refused', problems: problems.length }, `reload refused, every worker keeps its config: ${message}`);
      return announce(run, { result: 'refused', generation: 0, problems, message });
    }
    if (next.hash === serving.hash) {
      log.info({ event: 'reload-unchanged' }, 'config unchanged; nothing to reload');
      return announce(run, { result: 'unchanged', generation: 0, hash: next.hash });
    }
    let prepared: PreparedScaling;
    try {
      prepared = scaling.prepare(next);
    } catch (err) {
      const message = `cannot start the new config's scalers: ${(err as Error).message}`;
      log.error({ event: 'reload-refused', err: (err as Error).message }, `reload refused, every worker keeps its config: ${message}`);
      return announce(run, { result: 'refused', generation: 0, problems: [], message });
    }
    const hash = next.hash;
    // Bounded: a worker that does not come up in time is left out and restarts on the outcome if it crashes.
    await Promise.race([Promise.all(starting.values()), new Promise((r) => setTimeout(r, PREPARE_TIMEOUT_MS).unref())]);
    const workers = [...slots.keys()].filter((w) => ready.has(w));
    const replies = (await Promise.all(workers.map((w) => ask(w, { type: 'prepare', id: run, hash }, 'prepared', run)))).filter((r) => r !== 'gone');
    const refused = replies.filter((r) => r === null || (r.type === 'prepared' && r.result === 'refused'));
    if (refused.length) {
      prepared.abort();
      for (const w of workers) if (w.isConnected()) w.send({ type: 'abort', id: run } satisfies ToWorker);
      log.error({ event: 'reload-refused', refusedBy: refused.length, workers: workers.length }, 'a worker could not prepare the new config; every worker keeps the old one');
      const reason = refused.map((r) => (r?.type === 'prepared' ? r.message : undefined)).find((m) => m !== undefined) ?? 'a worker did not answer in time';
      return announce(run, { result: 'refused', generation: 0, problems: [], message: `a worker could not prepare the new config: ${reason}` });
    }
    const commits = await Promise.all(workers.map((w) => ask(w, { type: 'commit', id: run }, 'committed', run)));
    serving = { text, hash };
    for (const w of slots.keys()) if (ready.has(w) && w.isConnected() && !workers.includes(w)) replaceStale(w);
    // The workers serve the new config: the scaling loop follows it, the old config's scaler feeds are let go.
    prepared.commit();
    log.level = next.log.level;
    const generations = commits.filter((c) => c !== 'gone').map((c) => (c?.type === 'committed' ? c.generation : null));
    log.info({ event: 'cluster-reloaded', workers: workers.length, generations, hash: hash.slice(0, 12) }, 'every worker switched to the new config');
    return announce(run, { result: 'applied', generation: 0, hash });
  }

  /**
   * SIGHUP and a worker's POST /admin/reload. Runs never overlap. A request while one runs gets one more run
   * afterwards, on the newest file, shared with every request made meanwhile: whoever asks is answered by a run
   * that read the file after asking.
   */
  function reload(): Promise<{ run: number; result: ReloadResult }> {
    if (!running) {
      const run = ++runs;
      running = reloadOnce(run).catch((err: Error) => {
        log.error({ event: 'reload-failed', err }, 'reload failed; every worker keeps its config');
        return announce(run, { result: 'refused', generation: 0, problems: [], message: `reload failed: ${err.message}` });
      }).finally(() => { running = null; });
      return running.then((result) => ({ run, result }));
    }
    queued ??= running.then(() => { queued = null; return reload(); });
    return queued;
  }

  function shutdown(): void {
    if (draining) return;
    draining = true;
    log.info({ event: 'draining', workers: slots.size }, 'draining every worker');
    let worst = 0;
    const exits = [...slots.keys()].map((w) => new Promise<void>((resolve) => {
      w.once('exit', (code) => { worst = Math.max(worst, code ?? 1); resolve(); });
      if (ready.has(w)) w.send({ type: 'shutdown' } satisfies ToWorker);
    }));
    // Every worker drained; then the scalers stop (the process scaler stops its instances gracefully).
    void Promise.all(exits).then(() => scaling.close()).catch((err: Error) => log.error({ err, event: 'scaling-close-failed' }, 'closing the scalers failed')).then(() => {
      log.info({ event: 'stopped', exitCode: worst }, 'every worker stopped');
      log.flush();
      process.exitCode = worst;
      setTimeout(() => process.exit(), 100).unref();
    });
  }

  process.on('SIGHUP', () => { void reload(); });
  // logrotate renamed the log file: every process reopens it (without a handler SIGUSR2 would end the primary).
  process.on('SIGUSR2', () => {
    if (reopenLogFile(log)) log.info({ event: 'log-reopened' }, 'log file reopened');
    for (const w of slots.keys()) if (ready.has(w) && w.isConnected()) w.send({ type: 'reopen-log' } satisfies ToWorker);
  });
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // As in a single process: a bug in one piece of the primary's work must not end every worker with it.
  process.on('uncaughtException', (err) => log.error({ err, event: 'uncaught-exception' }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err, event: 'unhandled-rejection' }, 'unhandled rejection'));
}
