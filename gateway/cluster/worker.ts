import cluster from 'node:cluster';
import { createGateway } from '../create-gateway.js';
import { sharedClockMs } from '../signals/load-recorder.js';
import { mergeMetrics } from '../admin/cluster-metrics.js';
import { mergedTrafficAndHealth, snapshotTrafficAndHealth } from '../admin/traffic-and-health.js';
import type { ReloadResult } from '../admin/config-metrics.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { CLOSE_SLACK_MS, drainThenExit, exitOnFatalError } from '../process-exit.js';
import type { ReloadOutcome } from '../runtime/reloader.js';
import type { ToPrimary, ToWorker, WorkerPart } from './messages.js';
import { ClusterRateLimiter } from './cluster-rate-limiter.js';
import { PrimaryAsks } from './primary-asks.js';
import { WorkerReloads } from './worker-reloads.js';
import { WorkerScaling, type PrimaryChannel } from './worker-scaling.js';
import { WorkerFleetView } from './worker-fleet-view.js';
import { HealthVerdicts } from '../upstream/health-verdicts.js';

function send(message: ToPrimary): void {
  // A primary that is gone cannot be told anything; one that goes while this is sent fails it (EPIPE) into the
  // callback rather than as an 'error' event nobody handles. Its 'disconnect' follows, and the worker drains.
  if (process.connected) process.send?.(message, undefined, undefined, ignoreSendError);
}

function ignoreSendError(): void {}

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
function configFromPrimary(verdicts: HealthVerdicts): Promise<string> {
  return new Promise((resolve) => {
    const gone = () => process.exit(1);
    const listener = (m: ToWorker) => {
      if (m.type !== 'config') return;
      process.off('message', listener);
      process.off('disconnect', gone);
      for (const v of m.unhealthy) verdicts.set(v);
      resolve(m.text);
    };
    process.on('message', listener);
    process.once('disconnect', gone);
    if (!process.connected) gone();
    send({ type: 'config-request' });
  });
}

/**
 * A cluster worker: a whole gateway on its own socket of the data port (SO_REUSEPORT). It reloads only when the primary says so, in
 * two phases (prepare on every worker, then commit on all or abort on all), so no worker ever serves a config the
 * others refused; a POST /admin/reload that reaches it asks the primary for such a run and answers with its
 * outcome. It records load as one gateway does but scales nothing: the primary sums the workers' load and runs the
 * scaler (worker-scaling.ts); nor does it probe its endpoints: it applies the primary's health-check verdicts. SIGTERM or SIGINT sent to it directly drains it like the primary's shutdown
 * message does; an uncaught exception drains it too, and it exits 1 for the primary to replace it.
 */
export async function runWorker(file: string, plugins: PluginRegistry): Promise<void> {
  const id = cluster.worker?.id ?? 0;
  // The primary probes for the host; its verdicts are kept from the first one on, before the gateway exists.
  const verdicts = new HealthVerdicts();
  process.on('message', (m: ToWorker) => { if (m.type === 'health-verdict') verdicts.set(m.verdict); });
  const configText = await configFromPrimary(verdicts);
  const asks = new PrimaryAsks(send, () => process.connected, (what) => ownPart(what));
  const gateway = await createGateway({
    configFile: file, configText, plugins, logBindings: { worker: id }, reusePort: Number(process.env.GANTRY_LISTEN_PORT),
    reuseTlsPort: process.env.GANTRY_TLS_LISTEN_PORT ? Number(process.env.GANTRY_TLS_LISTEN_PORT) : undefined,
    scaling: { clock: sharedClockMs, create: (deps) => new WorkerScaling(deps, channel) },
    rateLimiter: new ClusterRateLimiter(channel),
    fleet: new WorkerFleetView(channel),
    // The primary orders tls.acme's certificates; a worker serves them from the storage directory.
    acmeOrders: false,
    healthVerdicts: verdicts,
    cluster: {
      exposeMetrics: async () => mergeMetrics((await asks.collect('metrics')).flatMap((p) => (p.what === 'metrics' ? [p.snapshot] : []))),
      trafficAndHealth: async () => mergedTrafficAndHealth((await asks.collect('traffic-and-health')).flatMap((p) => (p.what === 'traffic-and-health' && p.snapshot ? [p.snapshot] : [])), gateway.metrics),
      reload: async () => {
        const { result, run } = await asks.reload();
        await recorded;   // the run's recording (it re-reads the admin token) is done: the answer names that state
        return outcomeOf(result, run);
      },
    },
  });
  /** This worker's own part of one kind (traffic and health: null before a config is serving). */
  async function ownPart(what: WorkerPart['what']): Promise<WorkerPart> {
    if (what === 'metrics') return { what, snapshot: await gateway.metrics.snapshot() };
    const serving = gateway.current();
    return { what, snapshot: serving ? snapshotTrafficAndHealth(serving, gateway.metrics) : null };
  }
  const reloads = new WorkerReloads({ prepare: (hash) => gateway.prepareReload(hash), send, log: gateway.log });
  // The recording of the last run the primary announced.
  let recorded = Promise.resolve();

  function outcomeOf(result: ReloadResult, run: number): ReloadOutcome {
    const generation = gateway.current().generation;
    if (result.result === 'refused') return { ...result, generation };
    if (result.result === 'unchanged') return { result: 'unchanged', generation, hash: result.hash };
    // An applied run's answer carries what this worker's commit changed.
    const committed = reloads.committedOutcome(run);
    if (committed) return committed;
    // This worker was not in that run (it was not ready yet when the run began; the primary replaces it): what
    // changed here is not known.
    const none = { added: [], removed: [], changed: [] };
    return { result: 'applied', generation, hash: result.hash, changes: { routes: none, services: none, restartRequired: [] } };
  }
  const stop = drainThenExit(gateway.log, async () => ((await gateway.shutdown()).forced ? 1 : 0), () => gateway.current().config.server.drainGraceMs + CLOSE_SLACK_MS);
  process.on('message', (m: ToWorker) => {
    if (asks.receive(m)) return;
    switch (m.type) {
      case 'prepare':
        reloads.prepare(m.id, m.hash);
        break;
      case 'commit':
        reloads.commit(m.id);
        break;
      case 'abort':
        reloads.abort(m.id);
        break;
      case 'reload-result':
        recorded = gateway.clusterReloaded(m.result);
        break;
      case 'collect':
        void ownPart(m.what).then((part) => send({ type: 'collected', id: m.id, part }));
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
  process.once('SIGTERM', () => stop());
  process.once('SIGINT', () => stop());
  // Exits 1: the primary starts a new worker in its place.
  exitOnFatalError(gateway.log, stop);
  send({ type: 'ready', port: gateway.address().port });
}
