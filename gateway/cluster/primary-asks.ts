import type { ReloadResult } from '../admin/config-metrics.js';
import type { ToPrimary, ToWorker, WorkerPart } from './messages.js';

const GONE: ReloadResult = { result: 'refused', generation: 0, problems: [], message: 'the cluster primary is gone' };

/**
 * What a worker asks the primary for on behalf of an admin request, and the waiting for its answer: every worker's
 * numbers (GET /metrics, the dashboard's views) and a reload of the whole cluster (POST /admin/reload). A primary
 * that is gone answers nothing: numbers come from this worker alone, a reload is refused.
 */
export class PrimaryAsks {
  #last = 0;
  readonly #collects = new Map<number, { what: WorkerPart['what']; resolve: (parts: readonly WorkerPart[]) => void }>();
  readonly #reloads = new Map<number, (answer: { result: ReloadResult; run: number }) => void>();

  constructor(
    private readonly send: (m: ToPrimary) => void,
    private readonly connected: () => boolean,
    private readonly ownPart: (what: WorkerPart['what']) => Promise<WorkerPart>,
  ) {}

  collect(what: WorkerPart['what']): Promise<readonly WorkerPart[]> {
    if (!this.connected()) return this.ownPart(what).then((own) => [own]);
    const id = ++this.#last;
    return new Promise((resolve) => {
      this.#collects.set(id, { what, resolve });
      this.send({ type: 'collect-request', id, what });
    });
  }

  /** The outcome of the reload run that read the file after this request, and that run's number. */
  reload(): Promise<{ result: ReloadResult; run: number }> {
    if (!this.connected()) return Promise.resolve({ result: GONE, run: 0 });
    const id = ++this.#last;
    return new Promise((resolve) => {
      this.#reloads.set(id, resolve);
      this.send({ type: 'reload-request', id });
    });
  }

  /** Takes the primary's answers; false for any other message. */
  receive(m: ToWorker): boolean {
    if (m.type === 'collect-answer') this.#take(this.#collects, m.id)?.resolve(m.parts);
    else if (m.type === 'reload-answer') this.#take(this.#reloads, m.id)?.({ result: m.result, run: m.run });
    else return false;
    return true;
  }

  /** The primary is gone: waiting numbers come from this worker alone, reloads are refused. */
  primaryGone(): void {
    for (const id of [...this.#collects.keys()]) {
      const { what, resolve } = this.#take(this.#collects, id)!;
      void this.ownPart(what).then((own) => resolve([own]));
    }
    for (const id of [...this.#reloads.keys()]) this.#take(this.#reloads, id)!({ result: GONE, run: 0 });
  }

  #take<T>(waiting: Map<number, T>, id: number): T | undefined {
    const found = waiting.get(id);
    waiting.delete(id);
    return found;
  }
}
