import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ErrorCode } from '../errors.js';
import type { CompiledRoute } from '../routing/compiled-route.js';
import type { RetryCandidate } from '../resilience/build-service-policy.js';
import type { Bulkhead } from '../resilience/bulkhead.js';
import type { Selection } from '../resilience/endpoint-selector.js';
import type { ServiceRuntime } from '../runtime/runtime-snapshot.js';
import type { Generation } from '../runtime/snapshot-holder.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { TimerList, type Timer } from './timer-list.js';
import type { Attempt } from './upstream-attempt.js';
import type { InspectedRequest } from './inspect-request.js';

/** Links req and res to their exchange, for listeners that only get req or res as `this`. */
export const EXCHANGE = Symbol('gantry.exchange');

export type WithExchange<T> = T & { [EXCHANGE]?: Exchange };

/**
 * One request's journey: what it matched, where it went, how it ended. One object per request, with every field
 * declared up front so V8 keeps a single shape; the access log line is written from it when the response closes.
 */
export class Exchange implements InspectedRequest, RetryCandidate {
  readonly startMs = performance.now();
  requestId = '';
  /** W3C trace id passed on or created ('' when none): logged so a trace finds its access-log line. */
  traceId = '';
  host = '';
  hostHeader = '';
  /** Normalized path, before any rewrite: what was matched and what the access log shows. */
  path = '';
  route: CompiledRoute | undefined = undefined;
  service: ServiceRuntime | undefined = undefined;
  /** The endpoint of the latest attempt. */
  endpoint: EndpointState | undefined = undefined;
  /** The attempt under way (or the last one). */
  attempt: Attempt | undefined = undefined;
  selection: Selection | undefined = undefined;
  attempts = 0;
  /** Route deadline, retries included (ms since epoch), and its timer. */
  deadlineAt = 0;
  deadlineTimer: Timer<Exchange> | undefined = undefined;
  idempotent = false;
  /** The body can be sent again: none, or buffered in `body`. */
  replayable = false;
  /** What each attempt sends: null (no body), the buffered body, or the request itself (streamed once). */
  body: Buffer | IncomingMessage | null = null;
  /** The client sent Transfer-Encoding (the header itself is not forwarded: the upstream client frames the body). */
  chunked = false;
  budgetExhausted = false;
  /** Why the last attempt did not stand (a failure kind or `status-503`): the label of the next retry. */
  retryReason = '';
  /** Called when the response closes (the policy chain waits for it to give back its bulkhead slot). */
  onClosed: ((ex: Exchange) => void) | undefined = undefined;
  /** The bulkhead whose slot this request holds, until leaveSlot. */
  slot: Bulkhead | null = null;
  errorCode: ErrorCode | undefined = undefined;
  status = 0;
  /** Response body bytes relayed to the client. */
  bytes = 0;
  /** Request body bytes seen, for the limit on chunked bodies. */
  bodyBytes = 0;
  /** The response head is decided: the upstream's, or an error of ours. Later upstream events are ignored. */
  settled = false;
  /** The client sent `Expect: 100-continue`: answer 100 only once the request is accepted. */
  expectContinue = false;
  /** Close the client connection after this response (draining, or an unread body). */
  closeAfter = false;
  closed = false;
  /** The duration as first read after the close, in hundredths of a millisecond; -1 before. */
  closedHundredths = -1;

  constructor(
    readonly req: WithExchange<IncomingMessage>,
    readonly res: WithExchange<ServerResponse>,
    readonly generation: Generation | undefined,
  ) {
    req[EXCHANGE] = this;
    res[EXCHANGE] = this;
  }

  /** Gives back the bulkhead slot, if this request holds one. */
  leaveSlot(): void {
    const slot = this.slot;
    if (slot !== null) { this.slot = null; slot.leave(); }
  }

  clearDeadline(): void {
    if (this.deadlineTimer !== undefined) { TimerList.cancel(this.deadlineTimer); this.deadlineTimer = undefined; }
  }

  /** Time since the request arrived, in whole hundredths of a millisecond (the access log writes it from these). */
  durationHundredths(): number {
    if (this.closedHundredths >= 0) return this.closedHundredths;
    const h = Math.round((performance.now() - this.startMs) * 100);
    // Metrics, load signals and the access log each read it once the exchange closed: one clock read serves all
    // three, and they agree (callgrind: a performance.now() is about 0.2k instructions).
    if (this.closed) this.closedHundredths = h;
    return h;
  }

  durationMs(): number {
    return this.durationHundredths() / 100;
  }
}
