import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ERRORS, type ErrorCode } from '../errors.js';
import { normalizeTarget } from '../routing/normalize-path.js';
import { ServicePipeline, type RequestHold } from '../resilience/service-pipeline.js';
import { applyAnswerEdits } from '../policies/answer-edits.js';
import type { Refusal } from '../policies/policy.js';
import type { CompiledRoute } from '../routing/compiled-route.js';
import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import type { SnapshotHolder } from '../runtime/snapshot-holder.js';
import type { RequestTracer } from '../tracing/request-spans.js';
import { answerHttpChallenge, type AcmeChallengeFiles } from '../tls/acme-challenges.js';
import { ACME_CHALLENGE_PATH, redirectToHttps, type HttpsRedirect } from '../tls/https-redirect.js';
import type { ResilienceEvents } from '../upstream/endpoint-events.js';
import type { EndpointRegistry } from '../upstream/endpoint-registry.js';
import type { AccessLog } from './access-log.js';
import { sendError, sendGrpcError, sendRelayed } from './error-response.js';
import { grpcDeadlineMs, isGrpcRequest } from './grpc-call.js';
import { EXCHANGE, Exchange, type WithExchange } from './exchange.js';
import { prepareUpstreamHeaders } from './forwarded-headers.js';
import { UpstreamTransport } from './upstream-transport.js';
import { ALLOWED_METHODS, inspectRequest } from './inspect-request.js';
import { requestIdFrom } from './request-id.js';
import { applyTraceContext } from './trace-context.js';

export interface HandlerContext {
  readonly holder: SnapshotHolder;
  readonly registry: EndpointRegistry;
  /** The gateway's own log, for errors that are the gateway's fault. */
  readonly log: Logger;
  /** Access log; null when `log.access` is off (then no log object is built at all). */
  readonly accessLog: () => AccessLog | null;
  readonly draining: () => boolean;
  /** Retry, retry-budget and bulkhead counters. */
  readonly events?: ResilienceEvents;
  /** Called once per finished exchange (metrics, load signals); must be cheap and must not throw. */
  readonly observe?: (ex: Exchange) => void;
  /** Called once per request matched to a route, before it is forwarded (load signals: in flight); cheap, no throw. */
  readonly routed?: (ex: Exchange) => void;
  /** Scale from zero: holds requests for a scaled service until its first endpoint is ready. */
  readonly hold?: RequestHold;
  /** tls.redirectHttp: plain requests answered with 308 to this HTTPS port (0: served). */
  readonly httpsRedirect?: HttpsRedirect;
  /** tls.acme: where pending HTTP-01 challenges are published (null dir: no ACME, the path is routed as any). */
  readonly acmeChallenges?: AcmeChallengeFiles;
  /** tracing.spans: the tracer of new requests, null while tracing is off (gateway/tracing/tracing-switch.ts). */
  readonly tracing?: { readonly tracer: RequestTracer | null };
  /** Counts an error the server answered on the raw socket (RequestHandlers.answeredOnSocket). */
  readonly answeredOnSocket?: (code: ErrorCode) => void;
}

export interface RequestHandlers {
  handle(req: IncomingMessage, res: ServerResponse, expectContinue?: boolean): void;
  /** The header carrying request ids in the current config. */
  requestIdHeader(): string;
  /** An error answered on the raw socket, before any request existed (a parser error, CONNECT, plain HTTP to TLS). */
  answeredOnSocket(code: ErrorCode): void;
}

const RETRY_AFTER_NO_ENDPOINT_S = 1;
const NO_REDIRECT: HttpsRedirect = { port: 0 };
const NO_ACME: AcmeChallengeFiles = { http01Dir: null, alpnDir: null, domains: new Set() };
const ALLOWED = ALLOWED_METHODS.split(', ');
const NO_TRACING = { tracer: null };
// With spans, the upstream's traceparent is each try's client span (upstream-transport.ts): the request's own
// trace headers are only checked here, and none is created.
const JOIN_ONLY = { createTraceparent: false, sampleRatio: 0 };

/** The policies' edits of the answer head for the gateway's own answers; undefined on a route without any. */
function editsOf(ex: Exchange): ((headers: string[]) => void) | undefined {
  return ex.answerEdits === null ? undefined : (headers) => applyAnswerEdits(ex, headers);
}

export function createRequestHandler(ctx: HandlerContext): RequestHandlers {
  function requestIdHeader(): string {
    return ctx.holder.current?.config.server.requestIdHeader ?? 'x-request-id';
  }

  function fail(ex: Exchange, code: ErrorCode, extra: { allow?: readonly string[]; retryAfterS?: number; close?: boolean; headers?: readonly string[] } = {}): void {
    ex.settled = true;
    ex.errorCode = code;
    ex.clearDeadline();
    if (ex.res.headersSent) {
      ex.res.destroy();
      return;
    }
    // A gRPC client reads errors from grpc-status, not from an HTTP status and a JSON body.
    const grpc = isGrpcRequest(ex.req.headers);
    ex.status = grpc ? 200 : ERRORS[code].status;
    // A policy's answer fields (a rate limit's) are on every answer of the route, the gateway's errors too.
    const headers = ex.answerHeaders === null ? extra.headers : extra.headers === undefined ? ex.answerHeaders : [...ex.answerHeaders, ...extra.headers];
    try {
      ex.bytes = (grpc ? sendGrpcError : sendError)(ex.res, code, {
        requestId: ex.requestId || requestIdFrom(undefined), requestIdHeader: requestIdHeader(), route: ex.route?.name,
        retryAfterS: extra.retryAfterS, allow: extra.allow, headers, edit: editsOf(ex), close: extra.close || ex.closeAfter || ctx.draining(), http2: ex.http2,
      });
    } catch (err) {
      // The exchange is settled and its deadline cleared: a client left waiting here would wait forever.
      ctx.log.error({ err, reqId: ex.requestId, code }, 'could not write the error answer; closing the connection');
      ex.res.destroy();
    }
  }

  const redirect = ctx.httpsRedirect ?? NO_REDIRECT;
  const tracing = ctx.tracing ?? NO_TRACING;
  const acme = ctx.acmeChallenges ?? NO_ACME;
  const transport = new UpstreamTransport({ fail, requestIdHeader, draining: ctx.draining, registry: ctx.registry });
  const pipeline = new ServicePipeline({ transport, log: ctx.log, events: ctx.events, hold: ctx.hold });

  function onClose(this: WithExchange<ServerResponse>): void {
    const ex = this[EXCHANGE];
    if (!ex || ex.closed) return;
    ex.closed = true;
    ex.clearDeadline();
    ex.clientGone();
    const a = ex.attempt;
    if (a) {
      // The client left (or the response was cut): stop the upstream call too.
      if (!this.writableFinished) a.cancel();
      a.release();
    }
    ex.onClosed?.(ex);
    ex.spans?.end(ex, !this.writableFinished);
    ex.generation?.release();
    if (ex.budgetExhausted && ex.service) ctx.events?.retryBudgetExhausted(ex.service.config.name);
    ctx.observe?.(ex);
    ctx.accessLog()?.request(ex, !this.writableFinished);
  }

  function countBody(this: WithExchange<IncomingMessage>, chunk: Buffer): void {
    const ex = this[EXCHANGE];
    if (!ex?.route) return;
    ex.bodyBytes += chunk.length;
    if (ex.bodyBytes <= ex.route.config.maxBodyBytes) return;
    // Past the limit the body stops here, even when the upstream already answered without reading it all.
    this.off('data', countBody);
    ex.attempt?.cancel();
    if (!ex.settled) fail(ex, 'GW_ERR_BODY_TOO_LARGE', { close: true });
    else this.socket.destroy();   // the answer is out or streaming: stop reading; a cut answer shows its truncation
  }

  function handle(req: IncomingMessage, res: ServerResponse, expectContinue = false): void {
    const generation = ctx.holder.acquire();
    const ex = new Exchange(req, res, generation);
    ex.expectContinue = expectContinue;
    res.on('close', onClose);   // emitted once per response; `once` would wrap the listener for each request
    // Never so while serving: the listener opens after the first config is in place, and none is ever taken away.
    if (!generation) return fail(ex, 'GW_ERR_INTERNAL');
    const snapshot = generation.snapshot;
    const limits = snapshot.config.server;
    ex.requestId = requestIdFrom(req.headers[limits.requestIdHeader]);
    const tracer = tracing.tracer;
    if (tracer !== null) ex.traceId = (ex.spans = tracer.start(ex)).traceId;

    const bad = inspectRequest(req, limits, ex);
    if (bad) return fail(ex, bad, { close: true, allow: bad === 'GW_ERR_METHOD_NOT_ALLOWED' ? ALLOWED : undefined });
    if (req.url === '*') {   // OPTIONS * asks about the gateway itself
      ex.settled = true;
      ex.status = 200;
      res.writeHead(200, ['allow', ALLOWED_METHODS, 'content-length', '0']);
      res.end();
      return;
    }
    const target = normalizeTarget(req.url as string);
    if (!target) return fail(ex, 'GW_ERR_BAD_PATH');
    ex.path = target.path;
    ex.search = target.search;
    // tls.acme: HTTP-01 challenges are the gateway's to answer, before routing and before a redirect.
    const acmeDir = acme.http01Dir;
    if (acmeDir !== null && target.path.startsWith(ACME_CHALLENGE_PATH)) {
      return answerHttpChallenge(ex, acmeDir, target.path.slice(ACME_CHALLENGE_PATH.length), limits.requestIdHeader, ctx.draining(), fail);
    }
    // tls.redirectHttp: plain HTTP goes to https:// (a redirect needs a host), except ACME HTTP-01 challenges.
    if (redirect.port !== 0 && (req.socket as TLSSocket).encrypted !== true && !target.path.startsWith(ACME_CHALLENGE_PATH)) {
      return ex.host ? redirectToHttps(ex, redirect.port, limits.requestIdHeader, ctx.draining()) : fail(ex, 'GW_ERR_BAD_HOST');
    }

    const match = snapshot.router.match(req.method as string, ex.host, target.path, req.headers);
    if (match.kind === 'none') return fail(ex, 'GW_ERR_NO_ROUTE');
    if (match.kind === 'method-not-allowed') return fail(ex, 'GW_ERR_METHOD_NOT_ALLOWED', { allow: match.allow });
    // A split route hands over the side this request goes to: from here on a plain route of one service.
    const route = match.route.split === null ? match.route : match.route.split.pick(req);
    ex.route = route;
    ctx.routed?.(ex);

    const length = req.headers['content-length'];
    if (length !== undefined && Number(length) > route.config.maxBodyBytes) {
      return fail(ex, 'GW_ERR_BODY_TOO_LARGE', { close: true });
    }
    // The route's policies (docs/policies.md) after the checks that need no policy and before anything is forwarded;
    // a route without any goes straight on.
    const policies = route.policies;
    if (policies === null) return forward(ex, snapshot, route, target.search);
    const search = target.search;
    policies.run(ex, (ex, refusal) => {
      if (ex.closed) return;   // the client left while a policy waited: its close was logged already
      if (refusal === undefined) return forward(ex, snapshot, route, search);
      refuse(ex, refusal);
    });
  }

  /** A policy's refusal; an unread request body closes the connection after it (as for any answer before the body). */
  function refuse(ex: Exchange, refusal: Refusal): void {
    const req = ex.req;
    const close = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
      || (ex.http2 && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders);
    if ('code' in refusal) return fail(ex, refusal.code, { close, headers: refusal.headers });
    ex.settled = true;
    ex.status = refusal.relay.status;
    try {
      const headers = ex.answerHeaders === null ? refusal.relay.headers : [...refusal.relay.headers, ...ex.answerHeaders];
      ex.bytes = sendRelayed(ex.res, refusal.relay.status, headers, refusal.relay.body, {
        requestId: ex.requestId, requestIdHeader: requestIdHeader(), edit: editsOf(ex), close: close || ctx.draining(), http2: ex.http2,
      });
    } catch (err) {
      ctx.log.error({ err, reqId: ex.requestId }, 'could not write a policy\'s answer; closing the connection');
      ex.res.destroy();
    }
  }

  /** From the service lookup to the pipeline: the request passed every check and policy of its route. */
  function forward(ex: Exchange, snapshot: RuntimeSnapshot, route: CompiledRoute, search: string): void {
    const req = ex.req;
    const length = req.headers['content-length'];
    // An HTTP/2 body has no framing header: it is there unless the request's HEADERS frame ended the stream.
    ex.chunked = req.headers['transfer-encoding'] !== undefined
      || (ex.http2 && length === undefined && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders);
    const service = snapshot.services.get(route.service);
    if (!service || (service.pool.endpoints.length === 0 && !ctx.hold?.accepts(service))) return fail(ex, 'GW_ERR_NO_ENDPOINT', { retryAfterS: RETRY_AFTER_NO_ENDPOINT_S });

    const limits = snapshot.config.server;
    // HTTP/2 upstreams (gRPC): `te: trailers` goes with the request, and a shorter grpc-timeout bounds the call.
    const h2 = service.config.protocol === 'h2';
    const timeoutMs = h2 ? grpcDeadlineMs(req.headers, route.config.timeoutMs) : route.config.timeoutMs;
    prepareUpstreamHeaders(req.headers, {
      peer: req.socket.remoteAddress ?? '', trustedProxies: snapshot.trustedProxies, clientHost: ex.hostHeader,
      proto: (req.socket as TLSSocket).encrypted === true ? 'https' : 'http',
      requestIdHeader: limits.requestIdHeader, requestId: ex.requestId, teTrailers: h2,
    });
    if (ex.spans === null) ex.traceId = applyTraceContext(req.headers, snapshot.config.tracing);
    else applyTraceContext(req.headers, JOIN_ONLY);
    const hostMode = service.config.hostHeader;
    if (hostMode !== 'preserve' && hostMode !== 'endpoint') req.headers.host = hostMode;
    else if (ex.hostHeader) req.headers.host = ex.hostHeader;
    req.url = route.rewrite(ex.path) + search;

    pipeline.run(ex, service, timeoutMs, route.config.tryTimeoutMs);
    // Chunked bodies have no length up front: count them as they stream. Paused first, so our listener does not
    // start the flow before the upstream client attaches its own (it resumes the body when it starts sending).
    if (length === undefined && ex.chunked) req.pause().on('data', countBody);
  }

  return { handle, requestIdHeader, answeredOnSocket: (code) => ctx.answeredOnSocket?.(code) };
}
