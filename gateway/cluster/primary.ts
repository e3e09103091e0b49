import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { loadRoutesFile } from '../config/load-routes-file.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import { formatProblem, isConfigError } from '../errors.js';
import type { ReloadResult } from '../admin/metrics.js';
import type { ToPrimary, ToWorker } from './messages.js';
import { PrimaryScaling, type PreparedScaling } from './primary-scaling.js';

const PREPARE_TIMEOUT_MS = 30_000;
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
export async function runPrimary(file: string, count: number, log: Logger): Promise<void> {
  const plugins = createBuiltinRegistry();
  let config: GatewayConfig;
  try {
    config = await loadRoutesFile(file, plugins);
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
  const scaling = new PrimaryScaling(plugins, log.child({ component: 'scaling' }), () => [...slots.keys()].filter((w) => w.isConnected()));
  // The scalers start before the workers, so a scaler-fed service has its instances when the workers warm up.
  scaling.start(config);

  function fork(slot: number): void {
    const worker = cluster.fork({ GANTRY_WORKER_SLOT: String(slot) });
    slots.set(worker, slot);
    worker.on('message', (m: ToPrimary) => {
      if (scaling.receive(worker, m)) return;
      if (m.type === 'ready') {
        ready.add(worker);
        if (draining) { worker.send({ type: 'shutdown' } satisfies ToWorker); return; }
        crashes.set(slot, 0);
        scaling.workerReady(worker);
        log.info({ event: 'worker-ready', worker: worker.id, pid: worker.process.pid }, 'worker ready');
      }
    });
    worker.once('exit', (code, signal) => {
      slots.delete(worker);
      scaling.workerExited(worker.id);
      if (draining) return;
      const n = (crashes.get(slot) ?? 0) + 1;
      crashes.set(slot, n);
      const delay = RESTART_BACKOFF_MS[Math.min(n - 1, RESTART_BACKOFF_MS.length - 1)] as number;
      log.error({ event: 'worker-exit', worker: worker.id, code, signal, restartInMs: delay }, 'worker exited; restarting it');
      setTimeout(() => { if (!draining) fork(slot); }, delay);
    });
  }
  for (let slot = 0; slot < count; slot++) fork(slot);
  log.info({ event: 'cluster-started', workers: count, pid: process.pid }, `gantry primary started with ${count} workers`);

  let reloadId = 0;
  let reloading: Promise<void> | null = null;
  let again = false;

  function ask(worker: Worker, message: ToWorker, expect: ToPrimary['type'], id: number): Promise<ToPrimary | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { worker.off('message', onMessage); resolve(null); }, PREPARE_TIMEOUT_MS);
      function onMessage(m: ToPrimary) {
        if (m.type === expect && 'id' in m && m.id === id) { clearTimeout(timer); worker.off('message', onMessage); resolve(m); }
      }
      worker.on('message', onMessage);
      worker.send(message);
    });
  }

  /** Every worker records the cluster's outcome (its own generation filled in), whoever decided it. */
  function announce(result: ReloadResult): void {
    for (const w of slots.keys()) if (w.isConnected()) w.send({ type: 'reload-result', result } satisfies ToWorker);
  }

  async function reloadOnce(): Promise<void> {
    let next: GatewayConfig;
    try {
      next = await loadRoutesFile(file, plugins);
    } catch (err) {
      if (!isConfigError(err)) throw err;
      const message = err.problems.map(formatProblem).join('; ');
      log.error({ event: 'reload-refused', problems: err.problems.length }, `reload refused, every worker keeps its config: ${message}`);
      announce({ result: 'refused', generation: 0, problems: err.problems, message });
      return;
    }
    let prepared: PreparedScaling;
    try {
      prepared = scaling.prepare(next);
    } catch (err) {
      const message = `cannot start the new config's scalers: ${(err as Error).message}`;
      log.error({ event: 'reload-refused', err: (err as Error).message }, `reload refused, every worker keeps its config: ${message}`);
      announce({ result: 'refused', generation: 0, problems: [], message });
      return;
    }
    const hash = next.hash;
    const id = ++reloadId;
    const workers = [...slots.keys()];
    const replies = await Promise.all(workers.map((w) => ask(w, { type: 'prepare', id, hash }, 'prepared', id)));
    const refused = replies.filter((r) => r === null || (r.type === 'prepared' && r.result === 'refused'));
    if (refused.length) {
      prepared.abort();
      for (const w of workers) w.send({ type: 'abort', id } satisfies ToWorker);
      log.error({ event: 'reload-refused', refusedBy: refused.length, workers: workers.length }, 'a worker could not prepare the new config; every worker keeps the old one');
      const reason = refused.map((r) => (r?.type === 'prepared' ? r.message : undefined)).find((m) => m !== undefined) ?? 'a worker did not answer in time';
      announce({ result: 'refused', generation: 0, problems: [], message: `a worker could not prepare the new config: ${reason}` });
      return;
    }
    if (replies.every((r) => r?.type === 'prepared' && r.result === 'unchanged')) {
      prepared.abort();
      log.info({ event: 'reload-unchanged' }, 'config unchanged; nothing to reload');
      announce({ result: 'unchanged', generation: 0, hash });
      return;
    }
    const commits = await Promise.all(workers.map((w) => ask(w, { type: 'commit', id }, 'committed', id)));
    // The workers serve the new config: the scaling loop follows it, the old config's scaler feeds are let go.
    prepared.commit();
    const generations = commits.map((c) => (c?.type === 'committed' ? c.generation : null));
    log.info({ event: 'cluster-reloaded', workers: workers.length, generations, hash: hash.slice(0, 12) }, 'every worker switched to the new config');
    announce({ result: 'applied', generation: 0, hash });
  }

  function reload(): void {
    if (reloading) { again = true; return; }
    reloading = (async () => {
      do { again = false; await reloadOnce(); } while (again);
    })().finally(() => { reloading = null; });
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

  process.on('SIGHUP', reload);
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
