import type { Logger } from 'pino';
import type { PreparedReload, ReloadOutcome } from '../runtime/reloader.js';
import type { ToPrimary } from './messages.js';

export interface WorkerReloadsDeps {
  /** The first phase of a reload of the file whose hash the primary validated (Gateway.prepareReload). */
  prepare(hash: string): Promise<PreparedReload>;
  send(message: ToPrimary): void;
  readonly log: Logger;
}

/**
 * A worker's side of the cluster's two-phase reloads (cluster-reloads.ts): prepares a run when the primary says so,
 * then commits or aborts it. The primary numbers its runs in order and never overlaps them, but it stops waiting for
 * a prepare after its timeout and aborts the run; a prepare that finishes after its run was decided, or after a later
 * run began, is aborted here at once. Kept, it would hold a built snapshot (pools, discovery watches, health
 * checks) that no commit will ever swap in or release.
 */
export class WorkerReloads {
  #prepared: { readonly run: number; readonly reload: PreparedReload } | undefined;
  /** The newest run the primary asked about: any older run is over. */
  #newest = 0;
  /** The newest run the primary committed or aborted. */
  #decided = 0;
  #committed: { readonly run: number; readonly outcome: ReloadOutcome } | undefined;

  constructor(private readonly deps: WorkerReloadsDeps) {}

  prepare(run: number, hash: string): void {
    this.#newest = Math.max(this.#newest, run);
    this.deps.prepare(hash).then((reload) => {
      if (run < this.#newest || run <= this.#decided) {
        this.deps.log.warn({ event: 'reload-prepared-late', run }, 'a reload finished preparing after the primary stopped waiting for it; thrown away');
        reload.abort();
        return;
      }
      this.#prepared?.reload.abort();   // an older run nobody decided here: over all the same
      this.#prepared = { run, reload };
      const { outcome } = reload;
      this.deps.send({ type: 'prepared', id: run, result: outcome.result, message: outcome.result === 'refused' ? outcome.message : undefined });
    }, (err: Error) => this.deps.send({ type: 'prepared', id: run, result: 'refused', message: err.message }));
  }

  commit(run: number): void {
    const prepared = this.#decide(run);
    if (prepared?.run !== run) {
      prepared?.reload.abort();
      return;
    }
    this.#committed = { run, outcome: prepared.reload.commit() };
    this.deps.send({ type: 'committed', id: run, generation: this.#committed.outcome.generation });
  }

  abort(run: number): void {
    this.#decide(run)?.reload.abort();
  }

  /** What this worker's commit of `run` changed, if it committed that run. */
  committedOutcome(run: number): ReloadOutcome | undefined {
    return this.#committed?.run === run ? this.#committed.outcome : undefined;
  }

  /** Marks `run` decided and hands over what was prepared for it (or for an older run left behind). */
  #decide(run: number): { readonly run: number; readonly reload: PreparedReload } | undefined {
    this.#decided = Math.max(this.#decided, run);
    this.#newest = Math.max(this.#newest, run);
    const prepared = this.#prepared;
    if (!prepared || prepared.run > run) return undefined;
    this.#prepared = undefined;
    return prepared;
  }
}
