import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { ReloadResult } from '../admin/config-metrics.js';
import type { GatewayConfig } from '../config/gateway-config.js';
import { loadRoutesText, readRoutesFile } from '../config/load-routes-file.js';
import { formatProblem, isConfigError } from '../errors.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import { askWorker } from './ask-worker.js';
import type { ToWorker } from './messages.js';
import type { PreparedScaling, PrimaryScaling } from './primary-scaling.js';
import type { PrimaryHealthChecks } from './primary-health-checks.js';

/**
 * How long a worker has to prepare a config (and a starting worker to come up before a run goes on without it); a
 * service's warmTimeoutMs is at most 20 s (routes.schema.json) so that a prepare warming it ends before this.
 * GANTRY_PREPARE_TIMEOUT_MS changes it.
 */
export const PREPARE_TIMEOUT_MS = 30_000;

/** The primary's prepare timeout: PREPARE_TIMEOUT_MS, or GANTRY_PREPARE_TIMEOUT_MS when that is a positive integer. */
export function prepareTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.GANTRY_PREPARE_TIMEOUT_MS);
  return Number.isInteger(value) && value > 0 ? value : PREPARE_TIMEOUT_MS;
}

export interface ClusterReloadsDeps {
  readonly file: string;
  readonly plugins: PluginRegistry;
  readonly log: Logger;
  readonly scaling: PrimaryScaling;
  /** The host's health checks, which follow the config once every worker committed it. */
  readonly healthChecks: Pick<PrimaryHealthChecks, 'follow'>;
  /** How long a run waits for the workers to prepare (prepareTimeoutMs()). */
  readonly prepareTimeoutMs: number;
  /** The config the workers serve at start. */
  readonly serving: ServingConfig;
  /** Every forked worker, ready or not. */
  workers(): Iterable<Worker>;
  ready(worker: Worker): boolean;
  /** Resolves when the workers starting now (given their config, not yet ready) are ready or gone. */
  starting(): Promise<unknown>;
  /** A ready worker a run left out: it serves a config the others left. */
  replaceStale(worker: Worker): void;
  /** The workers serve `config` now (the primary's ACME renewal follows it). */
  applied(config: GatewayConfig): void;
}

/** The config the workers serve: its text and hash, and its drain grace (the primary's bound on a worker's drain). */
export interface ServingConfig {
  readonly text: string;
  readonly hash: string;
  readonly drainGraceMs: number;
}

/**
 * The cluster's reloads (SIGHUP, a worker's POST /admin/reload): the primary validates the file once, every ready
 * worker prepares it (parse, build, warm, no swap), then all commit or all abort, so no worker ever serves a config
 * the others refused. Every run's outcome is announced to every worker, for its metrics and admin API.
 */
export class ClusterReloads {
  /** The config the workers serve: a starting worker gets this text rather than reading the file. */
  serving: ServingConfig;
  #runs = 0;
  #running: Promise<ReloadResult> | null = null;
  #queued: Promise<{ run: number; result: ReloadResult }> | null = null;

  constructor(private readonly deps: ClusterReloadsDeps) {
    this.serving = deps.serving;
  }

  /**
   * Runs never overlap. A request while one runs gets one more run afterwards, on the newest file, shared with every
   * request made meanwhile: whoever asks is answered by a run that read the file after asking.
   */
  reload(): Promise<{ run: number; result: ReloadResult }> {
    if (!this.#running) {
      const run = ++this.#runs;
      this.#running = this.#runOnce(run).catch((err: Error) => {
        this.deps.log.error({ event: 'reload-failed', err }, 'reload failed; every worker keeps its config');
        return this.#announce(run, { result: 'refused', generation: 0, problems: [], message: `reload failed: ${err.message}` });
      }).finally(() => { this.#running = null; });
      return this.#running.then((result) => ({ run, result }));
    }
    this.#queued ??= this.#running.then(() => { this.#queued = null; return this.reload(); });
    return this.#queued;
  }

  /** Resolves when no reload run is going on. */
  settled(): Promise<unknown> {
    return this.#queued ?? this.#running ?? Promise.resolve();
  }

  /** Every worker records the cluster's outcome (its own generation filled in), whoever decided it. */
  #announce(run: number, result: ReloadResult): ReloadResult {
    for (const w of this.deps.workers()) if (w.isConnected()) w.send({ type: 'reload-result', run, result } satisfies ToWorker);
    return result;
  }

  async #runOnce(run: number): Promise<ReloadResult> {
    const { file, plugins, log, scaling } = this.deps;
    let next: GatewayConfig;
    let text: string;
    try {
      text = await readRoutesFile(file);
      next = await loadRoutesText(text, file, plugins);
    } catch (err) {
      const problems = isConfigError(err) ? err.problems : [];
      const message = isConfigError(err) ? problems.map(formatProblem).join('; ') : `cannot read the config: ${(err as Error).message}`;
      log.error({ event: 'reload-refused', problems: problems.length }, `reload refused, every worker keeps its config: ${message}`);
      return this.#announce(run, { result: 'refused', generation: 0, problems, message });
    }
    if (next.hash === this.serving.hash) {
      log.info({ event: 'reload-unchanged' }, 'config unchanged; nothing to reload');
      return this.#announce(run, { result: 'unchanged', generation: 0, hash: next.hash });
    }
    let prepared: PreparedScaling;
    try {
      prepared = scaling.prepare(next);
    } catch (err) {
      const message = `cannot start the new config's scalers: ${(err as Error).message}`;
      log.error({ event: 'reload-refused', err: (err as Error).message }, `reload refused, every worker keeps its config: ${message}`);
      return this.#announce(run, { result: 'refused', generation: 0, problems: [], message });
    }
    const hash = next.hash;
    // Bounded: a worker that does not come up in time is left out, and replaced if it comes up later (primary.ts).
    await Promise.race([this.deps.starting(), new Promise((r) => setTimeout(r, this.deps.prepareTimeoutMs).unref())]);
    const workers = [...this.deps.workers()].filter((w) => this.deps.ready(w));
    const replies = (await Promise.all(workers.map((w) => askWorker(w, { type: 'prepare', id: run, hash }, 'prepared', run, this.deps.prepareTimeoutMs)))).filter((r) => r !== 'gone');
    const refused = replies.filter((r) => r === null || (r.type === 'prepared' && r.result === 'refused'));
    if (refused.length) {
      prepared.abort();
      for (const w of workers) if (w.isConnected()) w.send({ type: 'abort', id: run } satisfies ToWorker);
      log.error({ event: 'reload-refused', refusedBy: refused.length, workers: workers.length }, 'a worker could not prepare the new config; every worker keeps the old one');
      const reason = refused.map((r) => (r?.type === 'prepared' ? r.message : undefined)).find((m) => m !== undefined) ?? 'a worker did not answer in time';
      return this.#announce(run, { result: 'refused', generation: 0, problems: [], message: `a worker could not prepare the new config: ${reason}` });
    }
    const commits = await Promise.all(workers.map((w) => askWorker(w, { type: 'commit', id: run }, 'committed', run, this.deps.prepareTimeoutMs)));
    this.serving = { text, hash, drainGraceMs: next.server.drainGraceMs };
    for (const w of this.deps.workers()) if (this.deps.ready(w) && w.isConnected() && !workers.includes(w)) this.deps.replaceStale(w);
    // The workers serve the new config: the scaling loop follows it, the old config's scaler feeds are let go.
    prepared.commit();
    this.deps.applied(next);
    void this.deps.healthChecks.follow(next).catch((err: Error) => log.error({ err, event: 'health-checks-follow-failed' }, 'the health checks could not switch to the new config'));
    log.level = next.log.level;
    const generations = commits.filter((c) => c !== 'gone').map((c) => (c?.type === 'committed' ? c.generation : null));
    log.info({ event: 'cluster-reloaded', workers: workers.length, generations, hash: hash.slice(0, 12) }, 'every worker switched to the new config');
    return this.#announce(run, { result: 'applied', generation: 0, hash });
  }
}
