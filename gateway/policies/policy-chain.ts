import type { Logger } from 'pino';
import type { PolicyDecisions, PolicyEvents, PolicyExchange, PolicyStep, Refusal, Verdict } from './policy.js';

/** A policy that threw or rejected: a gateway bug, answered 500 like any other. */
const INTERNAL: Refusal = { code: 'GW_ERR_INTERNAL', reason: 'internal' };

export type ChainDone<E extends PolicyExchange> = (ex: E, refusal: Refusal | undefined) => void;

function isPromise(v: Verdict | Promise<Verdict>): v is Promise<Verdict> {
  return v !== undefined && typeof (v as Promise<Verdict>).then === 'function';
}

/**
 * A route's policies, in the order the route lists them, built once per config. A route without policies has no
 * chain at all (CompiledRoute.policies is null), so it pays one null check.
 */
export class PolicyChain {
  readonly #steps: readonly PolicyStep[];
  readonly #decisions: readonly PolicyDecisions[];

  constructor(steps: readonly PolicyStep[], events: PolicyEvents, private readonly log: Logger) {
    this.#steps = steps;
    this.#decisions = steps.map((s) => events.decisions(s.policy, s.kind));
  }

  get names(): readonly string[] {
    return this.#steps.map((s) => s.policy);
  }

  /**
   * Runs the steps until one refuses, then calls `done` once: synchronously when every step answered at once (no
   * promise is made), after the first step that waits otherwise. A client that left while a step waited ends the
   * chain there: `done` gets no refusal and `ex.closed` is set.
   */
  run<E extends PolicyExchange>(ex: E, done: ChainDone<E>): void {
    this.#from(0, ex, done);
  }

  #from<E extends PolicyExchange>(first: number, ex: E, done: ChainDone<E>): void {
    const steps = this.#steps;
    for (let i = first; i < steps.length; i++) {
      let verdict: Verdict | Promise<Verdict>;
      try {
        verdict = (steps[i] as PolicyStep).apply(ex);
      } catch (err) {
        return this.#failed(i, err, ex, done);
      }
      if (verdict === undefined) {
        (this.#decisions[i] as PolicyDecisions).allowed();
        continue;
      }
      if (isPromise(verdict)) {
        verdict.then((v) => this.#settled(i, v, ex, done), (err: unknown) => this.#failed(i, err, ex, done));
        return;
      }
      (this.#decisions[i] as PolicyDecisions).refused(verdict.reason);
      return done(ex, verdict);
    }
    done(ex, undefined);
  }

  #settled<E extends PolicyExchange>(i: number, verdict: Verdict, ex: E, done: ChainDone<E>): void {
    // The client left while the step waited: its verdict is nobody's (not counted), and no later step runs for it (a
    // rate limit would count a request that is never forwarded).
    if (ex.closed) return done(ex, undefined);
    if (verdict !== undefined) {
      (this.#decisions[i] as PolicyDecisions).refused(verdict.reason);
      return done(ex, verdict);
    }
    (this.#decisions[i] as PolicyDecisions).allowed();
    this.#from(i + 1, ex, done);
  }

  #failed<E extends PolicyExchange>(i: number, err: unknown, ex: E, done: ChainDone<E>): void {
    const step = this.#steps[i] as PolicyStep;
    this.log.error({ err, reqId: ex.requestId, policy: step.policy, kind: step.kind }, 'a policy failed; answering 500');
    (this.#decisions[i] as PolicyDecisions).refused(INTERNAL.reason);
    done(ex, INTERNAL);
  }
}
