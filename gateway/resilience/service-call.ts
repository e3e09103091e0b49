import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../errors.js';
import type { RequestSpans } from '../tracing/request-spans.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { AttemptFailure } from './attempt-failure.js';
import type { Bulkhead } from './bulkhead.js';
import type { Selection } from './endpoint-selector.js';
import type { ServiceRuntime } from './service-policy.js';
import { TimerList, type Timer } from './timer-list.js';

/**
 * A request's state as the service pipeline keeps it (service-pipeline.ts): deadline, body for replay, bulkhead slot,
 * tries. The proxy's Exchange extends it with the HTTP side (route, ids, access-log fields). Every field is declared
 * up front so V8 keeps a single shape.
 */
export class ServiceCall {
  requestId = '';
  service: ServiceRuntime | undefined = undefined;
  /** The try under way (or the last one). */
  attempt: UpstreamTry | undefined = undefined;
  /** The endpoint of the latest try. */
  endpoint: EndpointState | undefined = undefined;
  selection: Selection | undefined = undefined;
  attempts = 0;
  /** Route deadline, retries included (ms since epoch), and its timer. */
  deadlineAt = 0;
  deadlineTimer: Timer<ServiceCall> | undefined = undefined;
  /** The route's per-try timeout (0: none). */
  perTryTimeoutMs = 0;
  idempotent = false;
  /** Told the buffered body when it is complete (PolicyExchange.bodyCopy: a mirror); null on most requests. */
  bodyCopy: ((body: Buffer | null) => void) | null = null;
  /** The body can be sent again: none, or buffered in `body`. */
  replayable = false;
  /** What each try sends: null (no body), the buffered body, or the request itself (streamed once). */
  body: Buffer | IncomingMessage | null = null;
  /** The client sent Transfer-Encoding (the header itself is not forwarded: the upstream client frames the body). */
  chunked = false;
  budgetExhausted = false;
  /** Why the last try did not stand (a failure kind or `status-503`): the label of the next retry. */
  retryReason = '';
  /** Called when the response closes (the pipeline waits for it to give back its bulkhead slot). */
  onClosed: ((call: ServiceCall) => void) | undefined = undefined;
  /** The bulkhead whose slot this request holds, until leaveSlot. */
  slot: Bulkhead | null = null;
  /** The response head is decided: the upstream's, or an error of ours. Later upstream events are ignored. */
  settled = false;
  /** The client sent `Expect: 100-continue`: answer 100 only once the request is accepted. */
  expectContinue = false;
  /** The client connection is gone (or the response finished): nobody is waiting for an answer. */
  closed = false;
  /** The request's spans (gateway/tracing/); null when tracing is off. */
  spans: RequestSpans | null = null;

  constructor(readonly req: IncomingMessage, readonly res: ServerResponse) {}

  /** Gives back the bulkhead slot, if this request holds one. */
  leaveSlot(): void {
    const slot = this.slot;
    if (slot !== null) { this.slot = null; slot.leave(); }
  }

  clearDeadline(): void {
    if (this.deadlineTimer !== undefined) { TimerList.cancel(this.deadlineTimer); this.deadlineTimer = undefined; }
  }
}

/** One try against one endpoint, as the pipeline sees it (gateway/proxy/upstream-attempt.ts's Attempt is one). */
export interface UpstreamTry {
  readonly call: ServiceCall;
  readonly endpoint: EndpointState;
  /** When the try started (Date.now()), for the endpoint's latency. */
  readonly startedAt: number;
  readonly statusCode: number;
  /** The upstream's Retry-After, for the backoff. */
  readonly retryAfter: string | undefined;
  /** Its head went out from the parser callback (an answer below 500): final, only its end is awaited. */
  readonly relayed: boolean;
  /** Made outside the breaker's execute while the circuit was closed: its outcome goes to the breaker directly. */
  readonly closedCircuit: boolean;
  /** Throws the held answer away (it is retried), keeping its connection. */
  drop(): void;
  /** The gateway gives up on the try: not the endpoint's fault. */
  cancel(): void;
  /** The route deadline ran out during the try. */
  timeOut(): void;
  /** The try is over for its endpoint (the response closed); once, however often called. */
  release(): void;
}

/** What the pipeline hears of a try from the transport, before the try's own outcome is handed on. */
export interface TryHooks {
  /** The head arrived: the endpoint's latency and health. */
  answered(t: UpstreamTry): void;
  /** The try failed. */
  failed(t: UpstreamTry, f: AttemptFailure): void;
}

/** The HTTP side the pipeline drives (gateway/proxy/upstream-transport.ts). */
export interface TryTransport {
  /**
   * Starts one try: `resolve` gets the held head (an answer below 500 already relayed from the parser callback
   * itself), `reject` the failure. tryTimeoutMs 0: no timer of its own. `closedCircuit`: see UpstreamTry.
   */
  start(call: ServiceCall, endpoint: EndpointState, tryTimeoutMs: number, startedAt: number, closedCircuit: boolean, hooks: TryHooks,
    resolve: (t: UpstreamTry) => void, reject: (f: AttemptFailure, t: UpstreamTry) => void): void;
  /** Writes a held answer's head and sends it on; false when it cannot be relayed (the try is cancelled). */
  relay(call: ServiceCall, t: UpstreamTry): boolean;
  /** Answers with the gateway's own error (docs/errors.md). */
  fail(call: ServiceCall, code: ErrorCode, extra?: { retryAfterS?: number }): void;
}
