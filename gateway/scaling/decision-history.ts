import type { LoadReport } from '../plugin-api/scaler.js';
import type { PolicyDecision } from './scale-policy.js';

/**
 * A decision as kept for the admin API (`recentDecisions`), counted by the metrics and written to the log. A held
 * decision has desired = current; a failed one keeps the count it tried to reach.
 */
export interface ScalingDecisionRecord extends PolicyDecision {
  readonly service: string;
  readonly scaler: string;
  /** applied: the scaler did it; failed: it refused or timed out (see error); held: no change, for a reason worth keeping. */
  readonly outcome: 'applied' | 'failed' | 'held';
  readonly error?: string;
  readonly load: LoadReport;
}

export type ScalingDirection = 'up' | 'down' | 'hold';

export function directionOf(d: Pick<ScalingDecisionRecord, 'current' | 'desired'>): ScalingDirection {
  return d.desired > d.current ? 'up' : d.desired < d.current ? 'down' : 'hold';
}

/**
 * The latest `size` decisions of each scaled service: kept by the scaling loop where it decides, and by each cluster
 * worker from what the primary sends, so the admin API of either lists the same.
 */
export class DecisionHistory {
  readonly #byService = new Map<string, ScalingDecisionRecord[]>();

  constructor(readonly size = 100) {}

  add(record: ScalingDecisionRecord): void {
    let kept = this.#byService.get(record.service);
    if (kept === undefined) {
      kept = [];
      this.#byService.set(record.service, kept);
    }
    kept.push(record);
    if (kept.length > this.size) kept.shift();
  }

  /** Oldest first: of one service, or of all (merged by time). */
  recent(service?: string): readonly ScalingDecisionRecord[] {
    if (service !== undefined) return [...(this.#byService.get(service) ?? [])];
    return [...this.#byService.values()].flat().sort((a, b) => a.at - b.at);
  }

  /** The service is no longer scaled: its decisions go with it. */
  forget(service: string): void {
    this.#byService.delete(service);
  }

  services(): IterableIterator<string> {
    return this.#byService.keys();
  }
}
