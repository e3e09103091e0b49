import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerLimits } from '../config/gateway-config.js';
import type { RequestHandlers } from '../proxy/handle-request.js';

/**
 * The data-plane server with its limits (BAD-INPUTS.md rows 8-11): Node's strict parser (never insecureHTTPParser),
 * a header and a request deadline against slowloris and slow bodies, a cap on header count and size.
 */
export function createEdgeServer(
  limits: ServerLimits,
  handlers: RequestHandlers,
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): http.Server {
  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    insecureHTTPParser: false,
    requireHostHeader: true,
    joinDuplicateHeaders: false,
    // How often Node checks header/request deadlines: bounds how late a slowloris socket is closed.
    connectionsCheckingInterval: 250,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
  }, (req, res) => handlers.handle(req, res));
  applyLimits(server, limits);
  // Answer 100 Continue only after the request passed routing and the body limit (413 without reading the body).
  server.on('checkContinue', (req, res) => handlers.handle(req, res, true));
  server.on('upgrade', onUpgrade);
  // Not a forward proxy: CONNECT is refused on the raw socket.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  });
  return server;
}

/** The limits a reload can change on the live server; maxHeaderBytes needs a restart. */
export function applyLimits(server: http.Server, limits: ServerLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // One more than the limit, so the handler can tell "too many" (431) from "exactly the limit".
  server.maxHeadersCount = limits.maxHeaders + 1;
}
