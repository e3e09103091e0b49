import cluster from 'node:cluster';
import { createGateway } from '../create-gateway.js';
import { sharedClockMs } from '../load/load-recorder.js';
import { mergeMetrics } from '../admin/cluster-metrics.js';
import { mergedFigures, snapshotFigures } from '../admin/live-figures.js';
import type { ReloadResult } from '../admin/metrics.js';
import type { PreparedReload, ReloadOutcome } from '../runtime/reloader.js';
import type { ToPrimary, ToWorker, WorkerFigures } from './messages.js';
import { PrimaryAsks } from './primary-asks.js';
import { WorkerScaling, type PrimaryChannel } from './worker-scaling.js';

function send(message: ToPrimary): void {
  // A primary that is gone cannot be told anything (and process.send would emit an error no one handles).
  if (process.connected) process.send?.(message);
}

const channel: PrimaryChannel = {
  send,
  listen(listener) {
    process.on('message', listener);
    return () => { process.off('message', listener); };
  },
};

/**
 * The text of the config the other workers serve. Not the file: it may hold edits not reloaded yet, or refused, and
 * a restarted worker must not serve them alone. A primary that is gone leaves nothing to start for.
 */
function configFromPrimary(): Promise<string> {
  return new Promise((resolve) => {
    const gone = () => process.exit(1);
    const listener = (m: ToWorker) => {
      if (m.type !== 'config') return;
      process.off('message', listener);
      process.off('disconnect', gone);
      resolve(m.text);
    };
    process.on('message', listener);
    process.once('disconnect', gone);
    if (!process.connected) gone();
    send({ type: 'config-request' });
  });
}

/**
 * A cluster worker: a whole gateway on the shared listening socket. It reloads only when the primary says so, in
 * two phases (prepare on every worker, then commit on all or abort on all), so no worker ever serves a config the
 * others refused; a POST /admin/reload that reaches it asks the primary for such a run and answers with its
 * outcome. It records load as one gateway does but scales nothing: the primary sums the workers' load and runs the
 * scaler (worker-scaling.ts). SIGTERM or SIGINT sent to it directly drains it like the primary's shutdown
 * message does.
 */
export async function runWorker(file: string): Promise<void> {
  const id = cluster.worker?.id ?? 0;
  const configText = await configFromPrimary();
  const asks = new PrimaryAsks(send, () => process.connected, (what) => ownFigures(what));
  const gateway = await createGateway({
    configFile: file, configText, logBindings: { worker: id },
    scaling: { clock: sharedClockMs, create: (deps) => new WorkerScaling(deps, channel) },
    cluster: {
      exposeMetrics: async () => mergeMetrics((await asks.collect('metrics')).flatMap((p) => (p.what === 'metrics' ? [p.snapshot] : []))),
      liveFigures: async () => mergedFigures((await asks.collect('figures')).flatMap((p) => (p.what === 'figures' && p.snapshot ? [p.snapshot] : [])), gateway.metrics),
      reload: async () => {
        const { result, run } = await asks.reload();
        await recorded;   // the run's recording (it re-reads the admin token) is done: the answer names that state
        return outcomeOf(result, run);
      },
    },
  });
  /** This worker's own figures of one kind (live figures: null before a config is serving). */
  async function ownFigures(what: WorkerFigures['what']): Promise<WorkerFigures> {
    if (what === 'metrics') return { what, snapshot: await gateway.metrics.snapshot() };
    const serving = gateway.current();
    return { what, snapshot: serving ? snapshotFigures(serving, gateway.metrics) : null };
  }
  let prepared: { id: number; reload: PreparedReload } | undefined;
  // This worker's last commit: an applied run's answer carries what it changed here.
  let committed: { run: number; outcome: ReloadOutcome } | undefined;
  // The recording of the last run the primary announced.
  let recorded = Promise.resolve();

  function outcomeOf(result: ReloadResult, run: number): ReloadOutcome {
    const generation = gateway.current().generation;
    if (result.result === 'refused') return { ...result, generation };
    if (result.result === 'unchanged') return { result: 'unchanged', generation, hash: result.hash };
    if (committed?.run === run) return committed.outcome;
    // This worker was not in that run (it was not ready yet when the run began; the primary replaces it): what
    // changed here is not known.
    const none = { added: [], removed: [], changed: [] };
    return { result: 'applied', generation, hash: result.hash, changes: { routes: none, services: none, restartRequired: [] } };
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void gateway.shutdown().then(({ forced }) => {
      gateway.log.flush();
      process.exit(forced ? 1 : 0);
    });
  };
  process.on('message', (m: ToWorker) => {
    if (asks.receive(m)) return;
    switch (m.type) {
      case 'prepare':
        void gateway.prepareReload(m.hash).then(
          (reload) => {
            prepared = { id: m.id, reload };
            send({ type: 'prepared', id: m.id, result: reload.outcome.result, message: reload.outcome.result === 'refused' ? reload.outcome.message : undefined });
          },
          (err: Error) => send({ type: 'prepared', id: m.id, result: 'refused', message: err.message }),
        );
        break;
      case 'commit':
        if (prepared?.id === m.id) {
          committed = { run: m.id, outcome: prepared.reload.commit() };
          send({ type: 'committed', id: m.id, generation: committed.outcome.generation });
        }
        prepared = undefined;
        break;
      case 'abort':
        if (prepared?.id === m.id) prepared.reload.abort();
        prepared = undefined;
        break;
      case 'reload-result':
        recorded = gateway.clusterReloaded(m.result);
        break;
      case 'collect':
        void ownFigures(m.what).then((part) => send({ type: 'collected', id: m.id, part }));
        break;
      case 'reopen-log':
        gateway.reopenLog();
        break;
      case 'shutdown':
        stop();
        break;
    }
  });
  // The primary coordinates reloads; a SIGHUP that reaches a worker (a process-group signal) is the primary's too.
  process.on('SIGHUP', () => {});
  // logrotate's SIGUSR2 reaches the primary, which passes it on; sent to the process group it reaches this worker
  // too, and reopening twice is harmless (without a handler the signal would end the worker).
  process.on('SIGUSR2', () => gateway.reopenLog());
  // The primary is gone (killed): nobody coordinates this worker any more, so it drains and exits.
  process.once('disconnect', () => {
    asks.primaryGone();
    stop();
  });
  // The primary died while this worker was still starting: its 'disconnect' came before the listener above.
  if (!process.connected) stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('uncaughtException', (err) => gateway.log.error({ err, event: 'uncaught-exception' }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => gateway.log.error({ err, event: 'unhandled-rejection' }, 'unhandled rejection'));
  send({ type: 'ready', port: gateway.address().port });
}
