import cluster from 'node:cluster';
import { createGateway } from '../create-gateway.js';
import { sharedClockMs } from '../load/load-recorder.js';
import { createLogger } from '../logger.js';
import type { PreparedReload } from '../runtime/reloader.js';
import type { ToPrimary, ToWorker } from './messages.js';
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
 * A cluster worker: a whole gateway on the shared listening socket. It reloads only when the primary says so, in
 * two phases (prepare on every worker, then commit on all or abort on all), so no worker ever serves a config the
 * others refused. It records load as one gateway does but scales nothing: the primary sums the workers' load and
 * runs the scaler (worker-scaling.ts). SIGTERM or SIGINT sent to it directly drains it like the primary's shutdown
 * message does.
 */
export async function runWorker(file: string): Promise<void> {
  const id = cluster.worker?.id ?? 0;
  const gateway = await createGateway({
    configFile: file, log: createLogger('info').child({ worker: id }),
    scaling: { clock: sharedClockMs, create: (deps) => new WorkerScaling(deps, channel) },
  });
  let prepared: { id: number; reload: PreparedReload } | undefined;
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
        if (prepared?.id === m.id) send({ type: 'committed', id: m.id, generation: prepared.reload.commit().generation });
        prepared = undefined;
        break;
      case 'abort':
        if (prepared?.id === m.id) prepared.reload.abort();
        prepared = undefined;
        break;
      case 'reload-result':
        gateway.metrics.reload({ ...m.result, generation: gateway.current().generation });
        break;
      case 'shutdown':
        stop();
        break;
    }
  });
  // The primary coordinates reloads; a SIGHUP that reaches a worker (a process-group signal) is the primary's too.
  process.on('SIGHUP', () => {});
  // The primary is gone (killed): nobody coordinates this worker any more, so it drains and exits.
  process.once('disconnect', stop);
  // The primary died while this worker was still starting: its 'disconnect' came before the listener above.
  if (!process.connected) stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('uncaughtException', (err) => gateway.log.error({ err, event: 'uncaught-exception' }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => gateway.log.error({ err, event: 'unhandled-rejection' }, 'unhandled rejection'));
  send({ type: 'ready', port: gateway.address().port });
}
