import { STATUS_CODES, type ServerResponse } from 'node:http';
import { constants, type Http2ServerResponse } from 'node:http2';
import { ERRORS, type ErrorCode } from '../errors.js';
import { grpcMessage } from './grpc-call.js';

export interface ErrorDetails {
  readonly requestId: string;
  readonly requestIdHeader: string;
  readonly route?: string | undefined;
  readonly retryAfterS?: number | undefined;
  readonly allow?: readonly string[] | undefined;
  /** More response headers as a flat [name, value, ...] list (a policy's WWW-Authenticate, RateLimit). */
  readonly headers?: readonly string[] | undefined;
  /** The route's policies' edits of the answer head (policies/answer-edits.ts), given the full list before it is written. */
  readonly edit?: ((headers: string[]) => void) | undefined;
  /** Close the connection after the answer (the request body was not read, or the gateway is draining). */
  readonly close?: boolean;
  /**
   * An HTTP/2 answer: no reason phrase, no Connection header (HTTP/2 has neither); `close` ends the stream after the
   * answer (RST_STREAM NO_ERROR, RFC 9113 §8.1) so an unread body stops, and leaves the connection's other streams.
   */
  readonly http2?: boolean;
}

/**
 * Answers with the gateway's own JSON error: `{ error, message, request_id, route }`. Once the upstream's response
 * head went out, a clean error is impossible: the connection is cut instead, so the client sees the truncation.
 * Returns the body bytes written.
 */
export function sendError(res: ServerResponse, code: ErrorCode, d: ErrorDetails): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const { status, message } = ERRORS[code];
  const body = JSON.stringify({ error: code, message, request_id: d.requestId, route: d.route ?? null });
  const length = Buffer.byteLength(body);
  const headers: string[] = [
    'content-type', 'application/json; charset=utf-8',
    'content-length', String(length),
    'cache-control', 'no-store',
    d.requestIdHeader, d.requestId,
  ];
  if (d.retryAfterS !== undefined) headers.push('retry-after', String(d.retryAfterS));
  if (d.allow) headers.push('allow', d.allow.join(', '));
  if (d.headers) headers.push(...d.headers);
  d.edit?.(headers);
  if (d.http2) return sendHttp2Error(res as unknown as Http2ServerResponse, status, headers, body, length, d.close === true);
  if (d.close) headers.push('connection', 'close');
  // The reason phrase is given: Node keeps the one of a writeHead that threw (an upstream's reason it refused, in
  // UpstreamTransport.writeHead), and would send it again or throw again on it.
  res.writeHead(status, STATUS_CODES[status], headers);
  if (res.req?.method === 'HEAD') {
    res.end();
    return 0;
  }
  res.end(body);
  return length;
}

/**
 * Answers with another service's answer (a forward-auth refusal: its status, chosen headers and body) and the
 * request id. Returns the body bytes written.
 */
export function sendRelayed(res: ServerResponse, status: number, relayed: readonly string[], body: Buffer, d: ErrorDetails): number {
  const headers = [...relayed, 'content-length', String(body.length), 'cache-control', 'no-store', d.requestIdHeader, d.requestId];
  d.edit?.(headers);
  if (d.http2) return sendHttp2Error(res as unknown as Http2ServerResponse, status, headers, body, body.length, d.close === true);
  if (d.close) headers.push('connection', 'close');
  res.writeHead(status, STATUS_CODES[status] ?? 'unknown', headers);
  if (res.req?.method === 'HEAD') {
    res.end();
    return 0;
  }
  res.end(body);
  return body.length;
}

function sendHttp2Error(res: Http2ServerResponse, status: number, headers: string[], body: string | Buffer, length: number, close: boolean): number {
  // Headers an upstream answer Node refused left behind (UpstreamTransport.writeHead) are not this answer's.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.writeHead(status, headers);
  const head = res.req.method === 'HEAD';
  const stream = res.stream;
  res.end(head ? '' : body, close ? () => { if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR); } : undefined);
  return head ? 0 : length;
}

/**
 * Answers a gRPC call with the gateway's error the way gRPC clients read one: HTTP 200, `content-type:
 * application/grpc`, `grpc-status` (the code's, gateway/errors.ts) and `grpc-message`, as a trailers-only response
 * (over HTTP/2 one HEADERS frame that ends the stream), with the request id. A JSON body would reach a gRPC client as
 * a malformed message. Returns the body bytes written: none.
 */
export function sendGrpcError(res: ServerResponse, code: ErrorCode, d: ErrorDetails): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const { grpc, message } = ERRORS[code];
  if (d.http2) {
    const h2 = res as unknown as Http2ServerResponse;
    for (const name of h2.getHeaderNames()) h2.removeHeader(name);
    h2.statusCode = 200;
    h2.setHeader('content-type', 'application/grpc');
    h2.setHeader('grpc-status', String(grpc));
    h2.setHeader('grpc-message', grpcMessage(message));
    h2.setHeader(d.requestIdHeader, d.requestId);
    // Ended before its head is sent, Node's compatibility API sends the head with END_STREAM: trailers-only.
    const stream = h2.stream;
    h2.end(d.close === true ? () => { if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR); } : undefined);
    return 0;
  }
  const headers = [
    'content-type', 'application/grpc', 'grpc-status', String(grpc), 'grpc-message', grpcMessage(message),
    'content-length', '0', d.requestIdHeader, d.requestId,
  ];
  if (d.close) headers.push('connection', 'close');
  res.writeHead(200, STATUS_CODES[200], headers);
  res.end();
  return 0;
}
