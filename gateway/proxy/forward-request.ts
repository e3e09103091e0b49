import { BrokenCircuitError, BulkheadRejectedError, CircuitState, TaskCancelledError } from 'cockatiel';
import type { Logger } from 'pino';
import { GatewayError, type ErrorCode } from '../errors.js';
import { CANDIDATE } from '../resilience/build-service-policy.js';
import { Selection } from '../resilience/endpoint-selector.js';
import { AttemptFailure } from '../resilience/is-retryable.js';
import type { CompiledRoute } from '../routing/compiled-route.js';
import type { ServiceRuntime } from '../runtime/runtime-snapshot.js';
import type { ResilienceEvents } from '../upstream/endpoint-events.js';
import type { EndpointRegistry } from '../upstream/endpoint-registry.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Exchange } from './exchange.js';
import { Forwarder } from './forwarder.js';
import { TimerLists } from './timer-list.js';
import { failure, type Attempt } from './upstream-attempt.js';

export interface ForwardingContext {
  readonly registry: EndpointRegistry;
  readonly log: Logger;
  readonly events?: ResilienceEvents;
  fail(ex: Exchange, code: ErrorCode, extra?: { retryAfterS?: number }): void;
  requestIdHeader(): string;
  draining(): boolean;
  /** Scale from zero: requests for a scaled service without endpoints wait for one (gateway/scaling/endpoint-wait.ts). */
  readonly wait?: EndpointWaiter;
}

/** Holds a request until its service has an endpoint (`resume`), or answers 503 through `giveUp`. */
export interface EndpointWaiter {
  accepts(service: ServiceRuntime): boolean;
  hold(ex: Exchange, service: ServiceRuntime, resume: () => void, giveUp: (retryAfterS: number) => void): void;
}

function leaveSlot(ex: Exchange): void {
  ex.leaveSlot();
}

function onDeadline(ex: Exchange, ctx: ForwardingContext): void {
  ex.deadlineTimer = undefined;
  if (ex.settled) return;
  ctx.fail(ex, 'GW_ERR_UPSTREAM_TIMEOUT');
  ex.attempt?.timeOut();
}

/**
 * Runs a routed request through its service's policy (build-service-policy.ts) and relays the answer:
 * route deadline → body buffering for replay → bulkhead → retry → endpoint choice → breaker → one attempt.
 */
export function createForwarding(ctx: ForwardingContext) {
  const deadlines = new TimerLists<Exchange>((ex) => onDeadline(ex, ctx));
  const forwarder = new Forwarder({ answered, failed, relayFinal, released: (a) => ctx.registry.requestDone(a.endpoint) });

  /** The head of an answer no policy can turn down, written from undici's parser callback (upstream-attempt.ts). */
  function relayFinal(a: Attempt): boolean {
    const ex = a.ex;
    if (ex.settled || ex.closed || !forwarder.writeHead(ex, a, ctx.requestIdHeader(), ex.closeAfter || ctx.draining())) return false;
    ex.settled = true;
    ex.clearDeadline();
    return true;
  }

  /** An answer's head: the endpoint's latency and health, and what the retry policy needs to judge it. */
  function answered(a: Attempt): void {
    const { ex, endpoint } = a;
    const service = ex.service as ServiceRuntime;
    const outliers = service.config.outlierDetection;
    const at = Date.now();
    endpoint.latency.observe(at - a.startedAt, at);
    endpoint.health.recordStatus(a.statusCode, outliers, at, () => service.selector.mayEject(at, outliers.maxEjectionPercent));
    if (a.closedCircuit) endpoint.health.closedSuccess();
    (a as Attempt & { [CANDIDATE]?: Exchange })[CANDIDATE] = ex;
    ex.retryReason = `status-${a.statusCode}`;
  }

  /**
   * A failed try: the retry policy learns whose failure it is, and unless the gateway gave up on the try itself (the
   * client left, the body was over the limit: nothing learnt about the endpoint), the endpoint's latency takes a
   * penalty and its breaker hears of it. A malformed answer also counts for outlier detection as the 502 it becomes.
   */
  function failed(a: Attempt, f: AttemptFailure): void {
    const { ex, endpoint } = a;
    ex.retryReason = f.kind;
    (f as AttemptFailure & { [CANDIDATE]?: Exchange })[CANDIDATE] = ex;
    if (f.kind === 'cancelled') return;
    if (a.closedCircuit) endpoint.health.closedFailure(f);
    const at = Date.now();
    endpoint.latency.penalize(at);
    if (f.kind === 'bad-response') {
      const service = ex.service as ServiceRuntime;
      const outliers = service.config.outlierDetection;
      endpoint.health.recordStatus(502, outliers, at, () => service.selector.mayEject(at, outliers.maxEjectionPercent));
    }
  }

  /** An open circuit refused the try: nothing was sent, so the retry policy may go to another endpoint at once. */
  function brokenCircuit(ex: Exchange, err: unknown): unknown {
    if (!(err instanceof BrokenCircuitError)) return err;
    const f = failure('broken-circuit');
    ex.retryReason = f.kind;
    (f as AttemptFailure & { [CANDIDATE]?: Exchange })[CANDIDATE] = ex;
    return f;
  }

  /**
   * The endpoint for the next try, the balancer's pick, or why there is none. Counts the try (and a retry), and sets
   * the Host an `endpoint` host mode sends.
   */
  function nextEndpoint(ex: Exchange, service: ServiceRuntime, now: number): EndpointState | GatewayError {
    const endpoint = service.selector.select((ex.selection ??= new Selection()), ex.req, now);
    if (endpoint === undefined) return new GatewayError('GW_ERR_NO_ENDPOINT', { retryAfterS: service.selector.retryAfterS(now) });
    if (ex.attempts > 0) ctx.events?.retry(service.config.name, ex.retryReason);
    ex.attempts++;
    if (service.config.hostHeader === 'endpoint') ex.req.headers.host = endpoint.hostHeader;
    return endpoint;
  }

  /** The try's own timeout: the route deadline covers the try unless the per-try timeout is shorter (0: none). */
  function tryTimeoutMs(ex: Exchange, now: number): number {
    const perTryMs = (ex.route as CompiledRoute).config.tryTimeoutMs;
    return perTryMs < ex.deadlineAt - now ? perTryMs : 0;
  }

  /**
   * One try on an endpoint the balancer picks, under that endpoint's breaker. Not an async function: the hooks above
   * do the bookkeeping from the attempt itself (about 1k fewer instructions per request). While the circuit is closed,
   * the one state in which it lets every call through, the try is made directly and the hooks tell the breaker its
   * outcome (EndpointHealth.closedSuccess, closedFailure); otherwise it goes through the breaker's execute, which
   * lets one probe through or refuses (about 3k fewer instructions per request; npm run bench:instructions -- --requests 6000).
   */
  function attemptOnce(ex: Exchange, service: ServiceRuntime): Promise<Attempt> {
    // The retry policy decided on the try before its backoff; the deadline may have answered, or the client left,
    // while it waited. The policy's predicates see settled/closed on the failure and stop.
    if (ex.settled || ex.closed) return Promise.reject(Object.assign(failure(ex.settled ? 'timeout' : 'cancelled'), { [CANDIDATE]: ex }));
    const now = Date.now();
    const endpoint = nextEndpoint(ex, service, now);
    if (endpoint instanceof GatewayError) return Promise.reject(endpoint);
    return tryThroughBreaker(ex, endpoint, now);
  }

  function tryThroughBreaker(ex: Exchange, endpoint: EndpointState, now: number): Promise<Attempt> {
    const breaker = endpoint.health.breaker;
    // A closed circuit lets every call through: the try reports to the breaker from the hooks (EndpointHealth).
    if (breaker === null || breaker.state === CircuitState.Closed) return forwarder.attempt(ex, endpoint, tryTimeoutMs(ex, now), ex.body, now, true);
    return breaker.execute(() => forwarder.attempt(ex, endpoint, tryTimeoutMs(ex, now), ex.body, now, false))
      .catch((err: unknown) => { throw brokenCircuit(ex, err); });
  }

  /**
   * The first try of a request holding its bulkhead slot. On a closed circuit it is made with callbacks, and an answer
   * below 500 (relayed from the parser callback, relayFinal) ends the policy's part there: the slot is given back when
   * the response closes. Anything else goes on through `rest`, the policy chain, as the try's outcome.
   * Why: the promises, async frames and microtasks of the bulkhead's execute, the try and the wait for the close were
   * paid on every request, for answers that no policy can act on (with bulkhead.ts, npm run bench:instructions, one
   * run each: about 12k fewer instructions per request).
   */
  function begin(ex: Exchange, service: ServiceRuntime): void {
    // Its turn in the bulkhead's queue may come after the client left or the deadline answered: the slot goes on.
    if (ex.settled || ex.closed) { ex.leaveSlot(); return; }
    const now = Date.now();
    const endpoint = nextEndpoint(ex, service, now);
    if (endpoint instanceof GatewayError) { afterFirst(ex, service, undefined, endpoint); return; }
    const breaker = endpoint.health.breaker;
    if (breaker === null || breaker.state === CircuitState.Closed) {
      forwarder.start(ex, endpoint, tryTimeoutMs(ex, now), ex.body, now, true, firstAnswered, firstFailed);
      return;
    }
    tryThroughBreaker(ex, endpoint, now).then((a) => afterFirst(ex, service, a, undefined), (err: unknown) => afterFirst(ex, service, undefined, err));
  }

  function firstAnswered(a: Attempt): void {
    const ex = a.ex;
    if (a.relayed) {
      if (ex.closed) ex.leaveSlot();
      else ex.onClosed = leaveSlot;
      return;
    }
    // Held (5xx) or not relayable: the policy judges it after the parser callback returns, as it would a promise's.
    queueMicrotask(() => afterFirst(ex, ex.service as ServiceRuntime, a, undefined));
  }

  function firstFailed(err: AttemptFailure, a: Attempt): void {
    const ex = a.ex;
    queueMicrotask(() => afterFirst(ex, ex.service as ServiceRuntime, undefined, err));
  }

  function afterFirst(ex: Exchange, service: ServiceRuntime, first: Attempt | undefined, firstError: unknown): void {
    rest(ex, service, first, firstError).then(() => ex.leaveSlot(), (err: unknown) => {
      ex.leaveSlot();
      onFailure(ex, service, err);
    });
  }

  /**
   * The policy's part after the first try, then the wait for the end. The first try is handed to the retry policy as
   * its attempt 0, so the policy judges it and drives any retry exactly as if it had made it, except for an answer
   * below 500: that one was relayed already (relayFinal) and is final (npm run bench:instructions -- --requests 6000:
   * about 3k fewer instructions per request).
   */
  async function rest(ex: Exchange, service: ServiceRuntime, first: Attempt | undefined, firstError: unknown): Promise<void> {
    const retry = service.policy.retry;
    let res: Attempt;
    if (first?.relayed) {
      res = first;
    } else if (retry === null) {
      if (first === undefined) throw firstError;
      res = first;
    } else {
      res = await retry.execute(({ attempt }) => {
        if (attempt > 0) return attemptOnce(ex, service);
        if (first === undefined) throw firstError;
        return first;
      });
    }
    if (res.relayed) {
      // Already on its way (relayFinal); the bulkhead slot is held until the response is done.
      if (!ex.closed) await new Promise<unknown>((resolve) => { ex.onClosed = resolve; });
      return;
    }
    if (ex.settled || ex.closed) {
      res.cancel();
      return;
    }
    ex.settled = true;
    ex.clearDeadline();
    if (!forwarder.relay(ex, res, ctx.requestIdHeader(), ex.closeAfter || ctx.draining())) {
      ex.settled = false;
      ctx.fail(ex, 'GW_ERR_UPSTREAM_BAD_RESPONSE');
      return;
    }
    // The bulkhead slot is held until the response is done, not just until its head: streaming answers count.
    if (!ex.closed) await new Promise<unknown>((resolve) => { ex.onClosed = resolve; });
  }

  function onFailure(ex: Exchange, service: ServiceRuntime, err: unknown): void {
    if (ex.settled || ex.closed) return;   // answered already, or nobody left to answer
    if (err instanceof BulkheadRejectedError) {
      ctx.events?.bulkheadRejected(service.config.name);
      return ctx.fail(ex, 'GW_ERR_OVERLOADED', { retryAfterS: 1 });
    }
    if (err instanceof TaskCancelledError) return;
    if (err instanceof GatewayError) return ctx.fail(ex, err.code, { retryAfterS: err.retryAfterS });
    if (err instanceof AttemptFailure) {
      if (err.kind === 'broken-circuit') return ctx.fail(ex, 'GW_ERR_NO_ENDPOINT', { retryAfterS: service.selector.retryAfterS(Date.now()) });
      return ctx.fail(ex, err.code);
    }
    ctx.log.error({ err, reqId: ex.requestId, route: ex.route?.name }, 'request failed inside the gateway');
    ctx.fail(ex, 'GW_ERR_INTERNAL');
  }

  function start(ex: Exchange, service: ServiceRuntime): void {
    if (ex.settled || ex.closed) return;
    const bulkhead = service.policy.bulkhead;
    if (bulkhead.tryEnter()) {
      ex.slot = bulkhead;
      begin(ex, service);
    } else if (!bulkhead.wait(() => { ex.slot = bulkhead; begin(ex, service); })) {
      // Answered a turn later, as a refusal from a promise-based bulkhead was.
      queueMicrotask(() => onFailure(ex, service, new BulkheadRejectedError(bulkhead.capacity, bulkhead.queueCapacity)));
    }
  }

  function forward(ex: Exchange, service: ServiceRuntime, route: CompiledRoute): void {
    // Before the deadline starts: the route's timeout counts from the moment an endpoint is ready.
    if (service.pool.endpoints.length === 0 && ctx.wait?.accepts(service)) {
      return ctx.wait.hold(ex, service, () => forward(ex, service, route), (retryAfterS) => ctx.fail(ex, 'GW_ERR_NO_ENDPOINT', { retryAfterS }));
    }
    const now = Date.now();
    const policy = service.policy;
    const req = ex.req;
    ex.service = service;
    ex.deadlineAt = now + route.config.timeoutMs;
    ex.deadlineTimer = deadlines.start(route.config.timeoutMs, ex);
    policy.budget.recordRequest(now);
    ex.idempotent = policy.retryMethods.has(req.method as string)
      || (policy.idempotencyKeyHeader !== null && req.headers[policy.idempotencyKeyHeader] !== undefined);
    if (ex.expectContinue) ex.res.writeContinue();

    const length = req.headers['content-length'];
    if (ex.chunked || (length !== undefined && Number(length) > policy.bufferBodyBytes)) {
      // Too large (or of unknown size) to keep: streamed once, never retried.
      ex.replayable = false;
      ex.body = req;
      start(ex, service);
    } else if (length === undefined || length === '0') {
      ex.replayable = true;
      start(ex, service);
    } else {
      ex.replayable = true;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => { ex.body = chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks); start(ex, service); });
    }
  }

  return { forward, forwarder };
}
