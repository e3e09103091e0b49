import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import http2, { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { ServerLimits } from '../config/gateway-config.js';
import type { ErrorCode } from '../errors.js';
import type { RequestHandlers } from '../proxy/handle-request.js';
import { writeRawError } from '../proxy/raw-error.js';
import { requestIdFrom } from '../proxy/request-id.js';
import { ALLOWED_METHODS } from '../proxy/inspect-request.js';

// What Node's parser and deadlines reject before a request exists, answered with the gateway's own JSON error
// (Node's default handler would send a bare status line).
const PARSER_ERRORS: Record<string, ErrorCode> = {
  HPE_HEADER_OVERFLOW: 'GW_ERR_HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'GW_ERR_REQUEST_TIMEOUT',
  HPE_INVALID_TRANSFER_ENCODING: 'GW_ERR_BAD_FRAMING',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'GW_ERR_BAD_FRAMING',
  HPE_INVALID_CONTENT_LENGTH: 'GW_ERR_BAD_FRAMING',
  HPE_INVALID_CHUNK_SIZE: 'GW_ERR_BAD_FRAMING',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'GW_ERR_BAD_FRAMING',
};

/**
 * The plain listener (http.Server) or the HTTPS one: https.Server, or with HTTP/2 an http2 secure server that serves
 * HTTP/1.1 too (ALPN http/1.1, allowHTTP1) with the same HTTP options: the same HTTP server over TCP or TLS.
 */
export type EdgeServer = http.Server | https.Server | http2.Http2SecureServer;

/** What the TLS listener adds: its TLS options and whether ALPN offers h2 (with its session bounds, http2-limits.ts). */
export interface SecureEdgeOptions {
  readonly tls: https.ServerOptions;
  /** Options of http2.createSecureServer (settings, session bounds); null: HTTP/1.1 only (https.Server). */
  readonly http2: http2.SecureServerOptions | null;
}

/**
 * The data-plane server with its limits (docs/bad-inputs.md rows 8-11): Node's strict parser (never insecureHTTPParser),
 * a header and a request deadline against slowloris and slow bodies, a cap on header count and size. With `secure`
 * (gateway/tls/tls-listener.ts) it is an HTTPS server with the same options, limits and handlers.
 */
export function createEdgeServer(
  limits: ServerLimits,
  handlers: RequestHandlers,
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
  secure?: SecureEdgeOptions,
): EdgeServer {
  const options: http.ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    insecureHTTPParser: false,
    // Off: inspect-request.ts answers a missing Host with the gateway's JSON error instead of Node's bare 400.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    // How often Node checks header/request deadlines: bounds how late a slowloris socket is closed.
    connectionsCheckingInterval: 250,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
  };
  const listener: http.RequestListener = (req, res) => handlers.handle(req, res);
  const server: http.Server = !secure ? http.createServer(options, listener)
    : secure.http2 === null ? https.createServer({ ...options, ...secure.tls }, listener)
    // HTTP/2 requests (Http2ServerRequest/Response, Node's compatibility API) take the same handler as HTTP/1.1 ones:
    // the request path reads what the two share and checks `httpVersionMajor` where they differ (inspect-request.ts).
    : http2.createSecureServer({ ...options, ...secure.tls, ...secure.http2, allowHTTP1: true }, listener as never) as unknown as http.Server;
  applyLimits(server, limits);
  // Answer 100 Continue only after the request passed routing and the body limit (413 without reading the body).
  server.on('checkContinue', (req, res) => handlers.handle(req, res, true));
  server.on('upgrade', onUpgrade);
  // Not a forward proxy: CONNECT is refused on the raw socket; an HTTP/2 CONNECT (a stream, answered with a response)
  // is refused by the request path like any other method it does not forward.
  server.on('connect', (req: IncomingMessage, socket: Duplex | Http2ServerResponse) => {
    if (socket instanceof Http2ServerResponse) { handlers.handle(req, socket as never); return; }
    socket.on('error', () => socket.destroy());
    writeRawError(socket, 'GW_ERR_METHOD_NOT_ALLOWED', requestIdFrom(undefined), handlers.requestIdHeader(), `allow: ${ALLOWED_METHODS}\r\n`);
    handlers.answeredOnSocket('GW_ERR_METHOD_NOT_ALLOWED');
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const message = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    // A reset needs no answer; a response already under way cannot be replaced by one; a TLS handshake that failed
    // (https.Server passes those on as clientError) has no HTTP to answer in.
    if (err.code === 'ECONNRESET' || !socket.writable || message?.headersSent || isTlsError(err)) {
      socket.destroy();
      return;
    }
    const code = PARSER_ERRORS[err.code ?? ''] ?? 'GW_ERR_BAD_REQUEST';
    writeRawError(socket, code, requestIdFrom(undefined), handlers.requestIdHeader());
    handlers.answeredOnSocket(code);
  });
  return server;
}

/** An error of the TLS layer (OpenSSL's, or Node's handshake timeout), not of the HTTP parser. */
function isTlsError(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || (err as { library?: string }).library === 'SSL routines';
}

/** The limits a reload can change on the live server; maxHeaderBytes needs a restart. */
export function applyLimits(server: EdgeServer | http.Server, limits: ServerLimits): void {
  // An http2 secure server keeps these HTTP/1.1 settings as an http.Server does (allowHTTP1); its types omit them.
  server = server as http.Server;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // No count limit in Node: the handler counts and answers 431 GW_ERR_TOO_MANY_HEADERS (inspect-request.ts). Node's
  // own count limit refuses with the same error as a head past maxHeaderSize, so the two could not be told apart;
  // maxHeaderSize still bounds how many headers can arrive.
  server.maxHeadersCount = 0;
}
