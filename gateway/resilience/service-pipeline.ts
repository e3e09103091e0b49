import { BulkheadRejectedError, TaskCancelledError } from 'cockatiel';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import type { ResilienceEvents } from '../upstream/endpoint-events.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { AttemptFailure, failure } from './attempt-failure.js';
import { closedFailure, closedSuccess, isClosed, throughBreaker } from './circuit-breaker.js';
import { Deadlines, tryTimeoutMs } from './deadline.js';
import { Selection } from './endpoint-selector.js';
import type { ServiceCall, TryHooks, TryTransport, UpstreamTry } from './service-call.js';
import type { ServiceRuntime } from './service-policy.js';

/** Holds a request until its service has an endpoint (`resume`), or answers 503 through `giveUp` (scale from zero). */
export interface RequestHold {
  accepts(service: ServiceRuntime): boolean;
  hold(call: ServiceCall, service: ServiceRuntime, resume: () => void, giveUp: (retryAfterS: number) => void): void;
}

export interface PipelineContext {
  /** The HTTP side: starts tries, relays answers, answers errors (gateway/proxy/upstream-transport.ts). */
  readonly transport: TryTransport;
  readonly log: Logger;
  readonly events?: ResilienceEvents;
  /** Scale from zero (gateway/scaling/endpoint-hold.ts). */
  readonly hold?: RequestHold;
}

function leaveSlot(call: ServiceCall): void {
  call.leaveSlot();
}

/**
 * One service call, from a routed request to the answer relayed, through its service's policy (service-policy.ts),
 * outermost first:
 *
 *   hold (scale from zero) → route deadline → body buffered for replay → bulkhead → retry → endpoint choice
 *     → breaker (per endpoint) → one try with its own timeout (the transport)
 *
 * The deadline starts once an endpoint is ready and spans the bulkhead queue, the tries and their backoff. The
 * bulkhead is outside the retry so a request waiting between tries keeps its slot (the upstream's load does not
 * drop while we back off); the retry is outside the endpoint choice so each retry can go elsewhere; the breaker is
 * per endpoint (endpoint-health.ts) so one bad instance opens alone.
 *
 * The stages compose as cockatiel's wrap() would, with two measured exceptions on the common path, documented
 * where they are: the first try of a request on a closed circuit is made with callbacks (`#begin`), and an answer
 * below 500 is relayed from the parser callback and is final (`#rest`).
 */
export class ServicePipeline implements TryHooks {
  readonly #ctx: PipelineContext;
  readonly #deadlines: Deadlines;
  readonly #firstAnswered = (t: UpstreamTry): void => this.#onFirstAnswer(t);
  readonly #firstFailed = (f: AttemptFailure, t: UpstreamTry): void => {
    const call = t.call;
    queueMicrotask(() => this.#afterFirst(call, call.service as ServiceRuntime, undefined, f));
  };

  constructor(ctx: PipelineContext) {
    this.#ctx = ctx;
    this.#deadlines = new Deadlines((call) => {
      ctx.transport.fail(call, 'GW_ERR_UPSTREAM_TIMEOUT');
      call.attempt?.timeOut();
    });
  }

  /** Runs a routed request through its service; the answer (or the gateway's error) goes out through the transport. */
  run(call: ServiceCall, service: ServiceRuntime, timeoutMs: number, perTryTimeoutMs: number): void {
    // Before the deadline starts: the route's timeout counts from the moment an endpoint is ready.
    const hold = this.#ctx.hold;
    if (service.pool.endpoints.length === 0 && hold !== undefined && hold.accepts(service)) {
      call.spans?.event('held', { 'gantry.service': service.config.name });
      return hold.hold(call, service, () => {
        call.spans?.event('hold ended', { 'gantry.outcome': 'endpoint ready' });
        this.run(call, service, timeoutMs, perTryTimeoutMs);
      }, (retryAfterS) => {
        call.spans?.event('hold ended', { 'gantry.outcome': 'gave up' });
        this.#ctx.transport.fail(call, 'GW_ERR_NO_ENDPOINT', { retryAfterS });
      });
    }
    const now = Date.now();
    const policy = service.policy;
    const req = call.req;
    call.service = service;
    call.perTryTimeoutMs = perTryTimeoutMs;
    this.#deadlines.start(call, timeoutMs, now);
    policy.budget.recordRequest(now);
    call.idempotent = policy.retryMethods.has(req.method as string)
      || (policy.idempotencyKeyHeader !== null && req.headers[policy.idempotencyKeyHeader] !== undefined);
    if (call.expectContinue) call.res.writeContinue();

    const length = req.headers['content-length'];
    if (call.chunked || (length !== undefined && Number(length) > policy.bufferBodyBytes)) {
      // Too large (or of unknown size) to keep: streamed once, never retried.
      call.replayable = false;
      call.body = req;
      call.bodyCopy?.(null);
      this.#enter(call, service);
    } else if (length === undefined || length === '0') {
      call.replayable = true;
      this.#enter(call, service);
    } else {
      call.replayable = true;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => {
        const body = call.body = chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks);
        call.bodyCopy?.(body);
        this.#enter(call, service);
      });
    }
  }

  // ---- bulkhead ----------------------------------------------------------------------------------------------------

  #enter(call: ServiceCall, service: ServiceRuntime): void {
    if (call.settled || call.closed) return;
    const bulkhead = service.policy.bulkhead;
    if (bulkhead.tryEnter()) {
      call.slot = bulkhead;
      this.#begin(call, service);
    } else if (!bulkhead.wait(() => { call.slot = bulkhead; this.#begin(call, service); })) {
      // Answered a turn later, as a refusal from a promise-based bulkhead was.
      queueMicrotask(() => this.#onFailure(call, service, new BulkheadRejectedError(bulkhead.capacity, bulkhead.queueCapacity)));
    }
  }

  // ---- the first try: the common path, with callbacks ---------------------------------------------------------------

  /**
   * The first try of a request holding its bulkhead slot. On a closed circuit it is made with callbacks, and an answer
   * below 500 (relayed from the parser callback) ends the pipeline's part there: the slot is given back when the
   * response closes. Anything else goes on through `#rest`, the retry stage, as the try's outcome.
   * Why: the promises, async frames and microtasks of the bulkhead's execute, the try and the wait for the close were
   * paid on every request, for answers that no policy can act on (with bulkhead.ts, npm run bench:instructions, one
   * run each: about 12k fewer instructions per request).
   */
  #begin(call: ServiceCall, service: ServiceRuntime): void {
    // Its turn in the bulkhead's queue may come after the client left or the deadline answered: the slot goes on.
    if (call.settled || call.closed) { call.leaveSlot(); return; }
    const now = Date.now();
    const endpoint = this.#select(call, service, now);
    if (endpoint instanceof GatewayError) { this.#afterFirst(call, service, undefined, endpoint); return; }
    const circuit = endpoint.health.circuit;
    if (isClosed(circuit)) {
      this.#ctx.transport.start(call, endpoint, tryTimeoutMs(call, call.perTryTimeoutMs, now), now, true, this, this.#firstAnswered, this.#firstFailed);
      return;
    }
    this.#tryThroughBreaker(call, endpoint, now)
      .then((t) => this.#afterFirst(call, service, t, undefined), (err: unknown) => this.#afterFirst(call, service, undefined, err));
  }

  #onFirstAnswer(t: UpstreamTry): void {
    const call = t.call;
    if (t.relayed) {
      if (call.closed) call.leaveSlot();
      else call.onClosed = leaveSlot;
      return;
    }
    // Held (5xx) or not relayable: the retry stage judges it after the parser callback returns, as it would a promise's.
    queueMicrotask(() => this.#afterFirst(call, call.service as ServiceRuntime, t, undefined));
  }

  #afterFirst(call: ServiceCall, service: ServiceRuntime, first: UpstreamTry | undefined, firstError: unknown): void {
    this.#rest(call, service, first, firstError).then(() => call.leaveSlot(), (err: unknown) => {
      call.leaveSlot();
      this.#onFailure(call, service, err);
    });
  }

  // ---- retry -------------------------------------------------------------------------------------------------------

  /**
   * The retry stage after the first try, then the wait for the end. The first try is handed to the retry policy as
   * its attempt 0, so the policy judges it and drives any retry exactly as if it had made it, except for an answer
   * below 500: that one was relayed already and is final (npm run bench:instructions -- --requests 6000: about 3k
   * fewer instructions per request).
   */
  async #rest(call: ServiceCall, service: ServiceRuntime, first: UpstreamTry | undefined, firstError: unknown): Promise<void> {
    const retry = service.policy.retry;
    let res: UpstreamTry;
    if (first?.relayed) {
      res = first;
    } else if (retry === null) {
      if (first === undefined) throw firstError;
      res = first;
    } else {
      res = await retry.execute(({ attempt }) => {
        if (attempt > 0) return this.#tryOnce(call, service);
        if (first === undefined) throw firstError;
        return first;
      });
    }
    if (res.relayed) {
      // Already on its way; the bulkhead slot is held until the response is done.
      if (!call.closed) await new Promise<unknown>((resolve) => { call.onClosed = resolve; });
      return;
    }
    if (call.settled || call.closed) {
      res.cancel();
      return;
    }
    call.settled = true;
    call.clearDeadline();
    if (!this.#ctx.transport.relay(call, res)) {
      call.settled = false;
      this.#ctx.transport.fail(call, 'GW_ERR_UPSTREAM_BAD_RESPONSE');
      return;
    }
    // The bulkhead slot is held until the response is done, not just until its head: streaming answers count.
    if (!call.closed) await new Promise<unknown>((resolve) => { call.onClosed = resolve; });
  }

  /** A retry: a try on an endpoint the balancer picks, under that endpoint's breaker. */
  #tryOnce(call: ServiceCall, service: ServiceRuntime): Promise<UpstreamTry> {
    // The retry policy decided on the try before its backoff; the deadline may have answered, or the client left,
    // while it waited. The policy's predicates see settled/closed on the failure and stop.
    if (call.settled || call.closed) {
      const f = failure(call.settled ? 'timeout' : 'cancelled');
      f.call = call;
      return Promise.reject(f);
    }
    const now = Date.now();
    const endpoint = this.#select(call, service, now);
    if (endpoint instanceof GatewayError) return Promise.reject(endpoint);
    return this.#tryThroughBreaker(call, endpoint, now);
  }

  // ---- endpoint choice ---------------------------------------------------------------------------------------------

  /**
   * The endpoint for the next try, the balancer's pick, or why there is none. Counts the try (and a retry), and sets
   * the Host an `endpoint` host mode sends.
   */
  #select(call: ServiceCall, service: ServiceRuntime, now: number): EndpointState | GatewayError {
    const endpoint = service.selector.select((call.selection ??= new Selection()), call.req, now);
    if (endpoint === undefined) {
      // Open circuits are skipped by the choice, not refused by their breaker: the trace still shows it was them.
      const open = call.spans === null ? 0 : service.selector.openCircuits(now);
      if (open > 0) call.spans?.event('breaker rejected', { 'gantry.breakers_open': open, 'gantry.endpoints': service.pool.endpoints.length });
      return new GatewayError('GW_ERR_NO_ENDPOINT', { retryAfterS: service.selector.retryAfterS(now) });
    }
    if (call.attempts > 0) this.#ctx.events?.retry(service.config.name, call.retryReason);
    call.attempts++;
    if (service.config.hostHeader === 'endpoint') call.req.headers.host = endpoint.hostHeader;
    return endpoint;
  }

  // ---- breaker and the try -----------------------------------------------------------------------------------------

  #tryThroughBreaker(call: ServiceCall, endpoint: EndpointState, now: number): Promise<UpstreamTry> {
    const circuit = endpoint.health.circuit;
    const timeoutMs = tryTimeoutMs(call, call.perTryTimeoutMs, now);
    const transport = this.#ctx.transport;
    const makeTry = (closedCircuit: boolean) => new Promise<UpstreamTry>((resolve, reject) =>
      transport.start(call, endpoint, timeoutMs, now, closedCircuit, this, resolve, reject));
    if (circuit === null || isClosed(circuit)) return makeTry(true);
    const through = throughBreaker(circuit, call, () => makeTry(false));
    const spans = call.spans;
    if (spans === null) return through;
    return through.catch((err: unknown) => {
      if (err instanceof AttemptFailure && err.kind === 'broken-circuit') spans.event('breaker rejected', { 'gantry.endpoint': endpoint.address });
      throw err;
    });
  }

  /** TryHooks: an answer's head. The endpoint's latency and health, and what the retry policy needs to judge it. */
  answered(t: UpstreamTry): void {
    const { call, endpoint } = t;
    const service = call.service as ServiceRuntime;
    const outliers = service.config.outlierDetection;
    const at = Date.now();
    endpoint.latency.observe(at - t.startedAt, at);
    endpoint.health.recordStatus(t.statusCode, outliers, at, () => service.selector.mayEject(at, outliers.maxEjectionPercent));
    if (t.closedCircuit) closedSuccess(endpoint.health.circuit);
    call.retryReason = `status-${t.statusCode}`;
  }

  /**
   * TryHooks: a failed try. The retry policy learns whose failure it is, and unless the gateway gave up on the try
   * itself (the client left, the body was over the limit: nothing learnt about the endpoint), the endpoint's latency
   * takes a penalty and its breaker hears of it. A malformed answer also counts for outlier detection as the 502 it
   * becomes.
   */
  failed(t: UpstreamTry, f: AttemptFailure): void {
    const { call, endpoint } = t;
    call.retryReason = f.kind;
    f.call = call;
    if (f.kind === 'cancelled') return;
    if (t.closedCircuit) closedFailure(endpoint.health.circuit, f);
    const at = Date.now();
    endpoint.latency.penalize(at);
    if (f.kind === 'bad-response') {
      const service = call.service as ServiceRuntime;
      const outliers = service.config.outlierDetection;
      endpoint.health.recordStatus(502, outliers, at, () => service.selector.mayEject(at, outliers.maxEjectionPercent));
    }
  }

  // ---- the outcome -------------------------------------------------------------------------------------------------

  #onFailure(call: ServiceCall, service: ServiceRuntime, err: unknown): void {
    if (call.settled || call.closed) return;   // answered already, or nobody left to answer
    const transport = this.#ctx.transport;
    if (err instanceof BulkheadRejectedError) {
      this.#ctx.events?.bulkheadRejected(service.config.name);
      return transport.fail(call, 'GW_ERR_OVERLOADED', { retryAfterS: 1 });
    }
    if (err instanceof TaskCancelledError) return;
    if (err instanceof GatewayError) return transport.fail(call, err.code, { retryAfterS: err.retryAfterS });
    if (err instanceof AttemptFailure) {
      if (err.kind === 'broken-circuit') return transport.fail(call, 'GW_ERR_NO_ENDPOINT', { retryAfterS: service.selector.retryAfterS(Date.now()) });
      return transport.fail(call, err.code);
    }
    this.#ctx.log.error({ err, reqId: call.requestId, service: service.config.name }, 'request failed inside the gateway');
    transport.fail(call, 'GW_ERR_INTERNAL');
  }
}
