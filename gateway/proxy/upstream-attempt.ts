import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { errors, type Dispatcher } from 'undici';
import { AttemptFailure, failure, type AttemptFailureKind } from '../resilience/attempt-failure.js';
import type { TryHooks, UpstreamTry } from '../resilience/service-call.js';
import { TimerList, type Timer } from '../resilience/timer-list.js';
import type { TrySpan } from '../tracing/request-spans.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { Exchange } from './exchange.js';
import { http2ResponseHeaderList, responseHeaderList } from './forwarded-headers.js';
import { takeGrpcStatus } from './grpc-call.js';

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const BAD_RESPONSE_ERRORS = new Set(['UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE', 'ERR_INVALID_CHAR']);
// OpenSSL's verification results as Node names them (X509_V_ERR_* without the prefix) and Node's own name check.
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'CERT_CHAIN_TOO_LONG', 'INVALID_CA', 'INVALID_PURPOSE', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A failed TLS handshake: the upstream's certificate not trusted, expired or for another name, or the upstream's alert
 * (no client certificate, no common protocol version). OpenSSL's errors come as ERR_SSL_*, Node's as ERR_TLS_*.
 */
function isTlsFailure(code: string): boolean {
  return CERTIFICATE_ERRORS.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
}

/** Maps an error of an upstream call (socket, parser, undici) to how the attempt failed. */
export function classifyUpstreamError(err: unknown): AttemptFailure {
  const code = (err as { code?: string } | null)?.code ?? '';
  // undici's parser errors carry no code when llhttp gave none (garbage instead of a status line, a bare CR).
  if (err instanceof errors.HTTPParserError) return new AttemptFailure('bad-response', false, { cause: err });
  if (CONNECT_ERRORS.has(code)) return new AttemptFailure('connect', true, { cause: err });
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new AttemptFailure('connect-timeout', true, { cause: err });
  // Nothing reached the upstream's HTTP side: a request written before a TLS 1.3 server refused the client's
  // certificate was dropped with the handshake, so it is safe to send again, as after a refused connection.
  if (isTlsFailure(code)) return new AttemptFailure('tls', true, { cause: err });
  if (code.startsWith('HPE_') || BAD_RESPONSE_ERRORS.has(code)) return new AttemptFailure('bad-response', false, { cause: err });
  return new AttemptFailure('reset', false, { cause: err });
}

const RETRY_AFTER = 'retry-after';

/**
 * Adds the upstream's trailers to the client's response. An HTTP/1.1 response carries them only when chunked (Node
 * drops them otherwise); an HTTP/2 one always can.
 */
function relayTrailers(res: ServerResponse, trailers: IncomingHttpHeaders): void {
  if (Object.keys(trailers).length === 0) return;
  try {
    res.addTrailers(trailers as Record<string, string>);
  } catch {
    // A trailer Node refuses (a name or value it considers invalid) is not relayed; the body still ends cleanly.
  }
}

/** The proxy's side of an attempt (upstream-transport.ts): the early relay of a final answer, and the endpoint's in-flight count. */
export interface AttemptOwner {
  /** Writes the head of a final answer at once; false leaves it to the pipeline (the request is settled). */
  relayFinal(a: Attempt): boolean;
  /** The try is over for the endpoint. */
  released(a: Attempt): void;
}

/**
 * One try of one request against one endpoint, as an undici dispatch handler: `resolve` gets the response head
 * (a 5xx holds the connection paused there), `reject` an AttemptFailure. The gateway then relays the answer
 * (`relay`), or drops it for a retry (`drop`), or gives up (`cancel`). An answer below 500 is final and is relayed
 * from onResponseStart itself (`relayFinal`). Owns the per-try timer and the endpoint's in-flight count.
 *
 * Callbacks rather than streams: no IncomingMessage, no pipe and its listeners per request; the body goes
 * straight from undici's parser to the client's ServerResponse, with backpressure through the controller's pause and resume.
 */
export class Attempt implements Dispatcher.DispatchHandler, UpstreamTry {
  timer: Timer<Attempt> | undefined = undefined;
  /** Set by our timers before they abort the call, so the error that follows is classified right. */
  abortedAs: AttemptFailureKind | undefined = undefined;
  /** The head arrived or the try failed: later events only concern the body. */
  done = false;
  released = false;
  statusCode = 0;
  statusText = '';
  retryAfter: string | undefined = undefined;
  /** The response headers to relay, hop-by-hop ones already gone. */
  headers: string[] = [];
  /** The head was written from onResponseStart (a final answer): the pipeline only has to wait for the end. */
  relayed = false;
  /** The answer goes to the client (relay); until relay or drop the connection is paused. */
  relaying = false;
  /** The upstream finished the response (before or after it was relayed). */
  complete = false;
  /** The upstream failed after the head: a relayed body is cut. */
  broken = false;
  /** Made while the endpoint's circuit was closed (or it has none): its outcome goes to the breaker directly. */
  closedCircuit = false;
  /** The upstream's trailers, kept from an HTTP/2 endpoint until the body's end is relayed. */
  trailers: IncomingHttpHeaders | undefined = undefined;
  /** The try's client span (gateway/tracing/); null when tracing is off. It ends when the try is released. */
  span: TrySpan | null = null;
  #controller: Dispatcher.DispatchController | undefined = undefined;
  /** Made when a client first pushes back, not for every attempt. */
  #onDrain: (() => void) | undefined = undefined;

  constructor(
    readonly call: Exchange,
    readonly endpoint: EndpointState,
    /** When the try started (Date.now()), for the endpoint's latency. */
    readonly startedAt: number,
    readonly resolve: (res: Attempt) => void,
    readonly reject: (err: AttemptFailure, a: Attempt) => void,
    /** The service pipeline (gateway/resilience/service-pipeline.ts). */
    readonly hooks: TryHooks,
    readonly owner: AttemptOwner,
  ) {}

  // ---- undici's side -------------------------------------------------------------------------------------------

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Given up while queued for a connection (timeout, client gone): never send it.
    if (this.done) controller.abort(new Error('attempt abandoned'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, _headers: unknown, statusText: string): void {
    if (statusCode < 200) return;   // 1xx informational: not ours to relay (Expect is answered by the gateway)
    if (this.done) { controller.abort(new Error('attempt abandoned')); return; }
    this.done = true;
    this.clearTimer();
    this.statusCode = statusCode;
    this.statusText = statusText;
    if (this.endpoint.http2) {
      const raw = controller.rawHeaders as unknown as Record<string, string | string[]>;
      this.headers = http2ResponseHeaderList(raw);
      if (raw['grpc-status'] !== undefined) this.trailers = takeGrpcStatus(this.headers);
    } else {
      // The raw pairs keep the upstream's header-name case, as nginx relays it.
      this.headers = responseHeaderList(controller.rawHeaders as Buffer[]);
    }
    for (let i = 0; i < this.headers.length; i += 2) {
      if ((this.headers[i] as string).length === RETRY_AFTER.length && (this.headers[i] as string).toLowerCase() === RETRY_AFTER) this.retryAfter = this.headers[i + 1];
    }
    this.hooks.answered(this);
    // Below 500 no policy can turn the answer down (retries and the breaker act on 5xx and failures only), so its
    // head goes out now and the body follows in this same parser run, instead of pausing the connection until the
    // policy chain has settled.
    if (statusCode < 500 && this.owner.relayFinal(this)) {
      this.relayed = true;
      this.relaying = true;
      this.resolve(this);
      return;
    }
    this.resolve(this);
    controller.pause();   // held until relay() or drop()
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.relaying) return;   // dropped: read to the end so the connection can be reused
    // A policy's transform (compress) when it took the body, the client's response otherwise.
    const out = this.call.sink ?? this.call.res;
    this.call.bytes += chunk.length;
    if (out.write(chunk)) return;
    controller.pause();
    out.once('drain', this.#onDrain ??= () => { this.#controller?.resume(); });
  }

  onResponseEnd(_controller?: Dispatcher.DispatchController, trailers?: IncomingHttpHeaders): void {
    this.complete = true;
    // Over HTTP/2 trailers carry what gRPC says of the call (grpc-status, grpc-message): they go to the client.
    if (this.endpoint.http2 && this.trailers === undefined) this.trailers = trailers;
    if (this.relaying) this.#finish();
    this.release();
  }

  #finish(): void {
    const { req, res, sink } = this.call;
    if (this.trailers !== undefined) relayTrailers(res, this.trailers);
    // With a transform, its end flushes what it holds and then ends the response (pipe).
    if (req.complete) { (sink ?? res).end(); return; }
    // The upstream answered before the client sent its whole body. undici stops sending it and destroys the
    // request stream, so the rest can no longer be read off the connection: close it once the answer is out.
    const socket = res.socket;
    if (sink === null) res.end(() => socket?.destroy());
    else { res.once('finish', () => socket?.destroy()); sink.end(); }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (!this.done) {
      this.fail(this.abortedAs ? failure(this.abortedAs) : classifyUpstreamError(err));
      return;
    }
    // A bodiless answer (to HEAD, or a 204 or 304) was whole with its head, so nothing after it can cut it short: a
    // reset or a length check against the Content-Length it may carry (RFC 9110 §8.6) is not a truncation.
    if (this.statusCode === 204 || this.statusCode === 304 || this.call.req.method === 'HEAD') {
      this.onResponseEnd();
      return;
    }
    // After the head: the upstream died mid-body (or we aborted it). Cut the client so it sees the truncation.
    this.broken = true;
    if (this.relaying && !this.call.res.writableEnded) this.call.res.destroy();
    this.release();
  }

  // ---- the gateway's side --------------------------------------------------------------------------------------

  fail(err: AttemptFailure): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    this.#controller?.abort(err);
    if (this.span !== null) this.span.failed(err.kind);   // before the release, which ends the span
    this.release();
    this.hooks.failed(this, err);
    this.reject(err, this);
  }

  /** Sends the held answer on: the caller has written the head. */
  relay(): void {
    this.relaying = true;
    if (this.complete) this.#finish();
    else this.#controller?.resume();
  }

  /** Drops the held answer (it is being retried): its body is read and thrown away, keeping the connection. */
  drop(): void {
    this.#controller?.resume();
  }

  /** The gateway gives up on this try (client gone, body over the limit, answer not wanted): not the endpoint's fault. */
  cancel(): void {
    if (!this.done) {
      this.abortedAs = 'cancelled';
      this.fail(failure('cancelled'));
      return;
    }
    if (!this.complete) this.#controller?.abort(new Error('cancelled by the gateway'));
    this.release();
  }

  /** Our timers: the try or the route deadline ran out. */
  timeOut(): void {
    if (this.done) return;
    this.abortedAs = 'timeout';
    this.fail(failure('timeout'));
  }

  clearTimer(): void {
    if (this.timer !== undefined) { TimerList.cancel(this.timer); this.timer = undefined; }
  }

  /** The try is over for the endpoint (failed, or its response was read or dropped). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.owner.released(this);
  }
}
