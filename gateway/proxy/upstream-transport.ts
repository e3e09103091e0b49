import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.js';
import type { AttemptFailure } from '../resilience/attempt-failure.js';
import type { TryHooks, TryTransport } from '../resilience/service-call.js';
import { TimerLists } from '../resilience/timer-list.js';
import type { EndpointRegistry } from '../upstream/endpoint-registry.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Exchange } from './exchange.js';
import { applyAnswerEdits } from '../policies/answer-edits.js';
import { replaceFields } from './forwarded-headers.js';
import { Attempt, type AttemptOwner } from './upstream-attempt.js';

/**
 * The request headers as undici's flat [name, value, …] list, without those unset for the upstream
 * (forwarded-headers.ts). Given the object, undici checks it for an iterator (Object.getPrototypeOf, Object.hasOwn) and
 * reads it through Object.keys and a lookup per name; a for-in here reads each value from the object's own layout
 * (npm run bench:instructions, two runs each: about 1k fewer instructions per request).
 */
function headerList(headers: IncomingHttpHeaders): string[] {
  const list: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) list.push(name, value as string);   // an array value (set-cookie) is undici's repeated header
  }
  return list;
}

/**
 * The upstream's body goes through `sink` (a policy's transform) to the client. pipe keeps the backpressure: a client
 * that does not read pauses the sink, whose full buffer makes the attempt pause the upstream. A client that leaves
 * destroys it, freeing its native memory at once.
 */
function pipeBody(ex: Exchange, sink: Duplex): void {
  ex.sink = sink;
  sink.pipe(ex.res);
  sink.on('error', () => ex.res.destroy());
  ex.res.once('close', () => sink.destroy());
}

function onTryTimeout(a: Attempt): void {
  a.timer = undefined;
  a.timeOut();
}

export interface TransportContext {
  /** Answers with the gateway's own error (handle-request.ts). */
  fail(ex: Exchange, code: ErrorCode, extra?: { retryAfterS?: number }): void;
  requestIdHeader(): string;
  draining(): boolean;
  readonly registry: EndpointRegistry;
}

/**
 * Sends requests upstream. HTTP goes over each endpoint's undici Pool through a dispatch handler (upstream-attempt.ts):
 * http-proxy's web() parses and merges options, joins URLs and pipes streams per request, and costs 1.9 times the
 * instructions per request of this path (bench/RESULTS.md, "Upstream clients"). The response head is written here,
 * so hop-by-hop headers never leak, Node frames the response for this client, and a retryable answer can be dropped
 * before the client sees anything. It is the service pipeline's transport (gateway/resilience/service-pipeline.ts).
 * WebSocket handshakes and tunnels are websocket-tunnel.ts.
 */
export class UpstreamTransport implements TryTransport, AttemptOwner {
  readonly #tryTimers = new TimerLists<Attempt>(onTryTimeout);

  constructor(private readonly ctx: TransportContext) {}

  /**
   * Starts one attempt: `resolve` gets the held response head (called from undici's parser callback itself),
   * `reject` an AttemptFailure. What it sends: `ex.body`, buffered (replayable), or the request itself to stream it
   * once, or null when there is none. tryTimeoutMs 0: no timer of its own (the route deadline covers the try).
   * `startedAt`: Date.now() at the try's start. `closedCircuit`: made outside the breaker's execute (Attempt.closedCircuit).
   */
  start(ex: Exchange, endpoint: EndpointState, tryTimeoutMs: number, startedAt: number, closedCircuit: boolean, hooks: TryHooks,
    resolve: (a: Attempt) => void, reject: (err: AttemptFailure, a: Attempt) => void): void {
    const a = new Attempt(ex, endpoint, startedAt, resolve, reject, hooks, this);
    a.closedCircuit = closedCircuit;
    endpoint.inFlight++;
    ex.attempt = a;
    ex.endpoint = endpoint;
    if (tryTimeoutMs > 0) a.timer = this.#tryTimers.start(tryTimeoutMs, a);
    const req = ex.req;
    // Traced: the upstream's traceparent names this try's client span as its parent (retries are its siblings).
    if (ex.spans !== null) req.headers.traceparent = (a.span = ex.spans.tryStarted(ex, endpoint)).traceparent;
    const body = ex.body;
    const method = req.method as Dispatcher.HttpMethod;
    // undici closes the connection after a HEAD (against servers that send a body anyway); an answer to HEAD has
    // none (RFC 9110 §9.3.2), so the connection is kept as after a GET. Not with a request body, which a server
    // may leave unread on the connection: undici's own close after a body on such a method stays.
    const reset = method === 'HEAD' && body === null ? false : undefined;
    // `servername`: the service's tls.serverName; unset, undici takes the TLS name from the Host header.
    endpoint.pool.dispatch({ method, path: req.url as string, headers: headerList(req.headers), body, reset, servername: endpoint.servername }, a);
  }

  fail(ex: Exchange, code: ErrorCode, extra?: { retryAfterS?: number }): void {
    this.ctx.fail(ex, code, extra);
  }

  /** The head of an answer no policy can turn down, written from undici's parser callback (upstream-attempt.ts). */
  relayFinal(a: Attempt): boolean {
    const ex = a.call;
    if (ex.settled || ex.closed || !this.writeHead(ex, a, ex.closeAfter || this.ctx.draining())) return false;
    ex.settled = true;
    ex.clearDeadline();
    return true;
  }

  released(a: Attempt): void {
    this.ctx.registry.requestDone(a.endpoint);
    a.span?.end(a);
  }

  /**
   * Writes the chosen response head and lets the body flow to the client. Returns false when the answer cannot be
   * relayed: Node refused a header value, or the upstream failed while the answer was held.
   */
  relay(ex: Exchange, a: Attempt): boolean {
    if (a.broken) return false;
    if (!this.writeHead(ex, a, ex.closeAfter || this.ctx.draining())) {
      a.cancel();
      return false;
    }
    a.relay();
    return true;
  }

  /** The response head for the client, with the request id (and Connection: close); false when Node refused it. */
  writeHead(ex: Exchange, a: Attempt, close: boolean): boolean {
    const headers = a.headers;
    // A policy's fields (a rate limit's) replace the upstream's of the same names; a route without any pays this check.
    if (ex.answerHeaders !== null) replaceFields(headers, ex.answerHeaders);
    if (ex.answerEdits !== null) applyAnswerEdits(ex, headers);
    const sink = ex.answerBody === null ? null : ex.answerBody.start(headers, a.statusCode, ex);
    const own = headers.length;
    headers.push(this.ctx.requestIdHeader(), ex.requestId);
    // HTTP/2 has neither a Connection header nor a reason phrase: a draining session ends with GOAWAY instead.
    if (ex.http2) close = false;
    if (close) headers.push('connection', 'close');
    try {
      ex.res.writeHead(a.statusCode, ex.http2 ? undefined : a.statusText || undefined, headers);
    } catch {
      // Node refuses a header value the upstream's parser let through (e.g. a bad reason phrase).
      headers.length = own;
      sink?.destroy();
      return false;
    }
    ex.status = a.statusCode;
    if (sink !== null) pipeBody(ex, sink);
    return true;
  }
}
