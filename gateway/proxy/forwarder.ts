import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { ErrorCode } from '../errors.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { EXCHANGE, type Exchange, type WithExchange } from './exchange.js';
import { responseHeaderList } from './forwarded-headers.js';

/** What the forwarder asks of the request handler: how to fail an exchange and whether to close connections. */
export interface ForwarderHooks {
  fail(ex: Exchange, code: ErrorCode): void;
  readonly requestIdHeader: () => string;
  readonly draining: () => boolean;
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

/** Maps a socket or parser error of the upstream call to the answer the client gets. */
export function upstreamErrorCode(err: unknown): ErrorCode {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (CONNECT_ERRORS.has(code)) return 'GW_ERR_UPSTREAM_CONNECT';
  if (code.startsWith('HPE_') || code === 'ERR_INVALID_CHAR' || code === 'ERR_HTTP_INVALID_HEADER_VALUE') return 'GW_ERR_UPSTREAM_BAD_RESPONSE';
  return 'GW_ERR_UPSTREAM_RESET';
}

function ignore(): void {}

function onTimeout(ex: Exchange, fail: ForwarderHooks['fail']): void {
  ex.timer = undefined;
  if (ex.settled) return;
  // http-proxy reports its own proxyTimeout as ECONNRESET; our timer knows it was a timeout and answers 504.
  fail(ex, 'GW_ERR_UPSTREAM_TIMEOUT');
  ex.proxyReq?.destroy();
}

function countBytes(this: WithExchange<IncomingMessage>, chunk: Buffer): void {
  const ex = this[EXCHANGE];
  if (ex) ex.bytes += chunk.length;
}

function onUpstreamBodyClose(this: WithExchange<IncomingMessage>): void {
  // The upstream died mid-body: cut the client connection so it sees the truncation instead of hanging.
  const ex = this[EXCHANGE];
  if (ex && !this.complete && !ex.res.writableEnded) ex.res.destroy();
}

/**
 * The http-proxy instance, its listeners, and the one call the hot path makes. http-proxy opens the upstream request
 * and pipes the body; the response head is written here (selfHandleResponse) so hop-by-hop headers never leak and
 * Node frames the response for this client.
 */
export class Forwarder {
  readonly #proxy = httpProxy.createProxyServer({ selfHandleResponse: true, xfwd: false, prependPath: false });
  readonly #hooks: ForwarderHooks;
  readonly #onProxyError: (err: Error, req: IncomingMessage, res: ServerResponse | unknown) => void;

  constructor(hooks: ForwarderHooks) {
    this.#hooks = hooks;
    this.#proxy.on('proxyReq', (proxyReq: ClientRequest, req: WithExchange<IncomingMessage>) => {
      const ex = req[EXCHANGE];
      if (!ex) return;
      ex.proxyReq = proxyReq;
      if (ex.closed || (ex.settled && !ex.proxyRes)) proxyReq.destroy();   // timed out or the client left while queued
    });
    this.#proxy.on('proxyReqWs', (proxyReq: ClientRequest, _req: IncomingMessage, socket: Duplex) => {
      socket.once('close', () => proxyReq.destroy());
      proxyReq.on('upgrade', (_res: IncomingMessage, upstream: Duplex) => {
        upstream.on('error', ignore);
        upstream.once('close', () => socket.destroy());
        socket.once('close', () => upstream.destroy());
      });
    });
    this.#proxy.on('proxyRes', (proxyRes: IncomingMessage, req: WithExchange<IncomingMessage>) => this.#onResponse(proxyRes, req));
    // A client reset while the upstream call runs: the exchange's close handler already destroyed both sides.
    this.#proxy.on('econnreset', ignore);
    // Only reached if a call forgot its callback; never let http-proxy re-throw and end the process.
    this.#proxy.on('error', ignore);
    this.#onProxyError = (err, req: WithExchange<IncomingMessage>) => {
      const ex = req[EXCHANGE];
      if (!ex) return;
      if (ex.settled) {
        if (ex.proxyRes && !ex.res.writableEnded) ex.res.destroy();
        return;
      }
      this.#hooks.fail(ex, upstreamErrorCode(err));
    };
  }

  forward(ex: Exchange, endpoint: EndpointState, timeoutMs: number): void {
    endpoint.inFlight++;
    ex.endpoint = endpoint;
    ex.timer = setTimeout(onTimeout, timeoutMs, ex, this.#hooks.fail);
    if (ex.expectContinue) ex.res.writeContinue();
    this.#proxy.web(ex.req, ex.res, { target: endpoint.target as never, agent: endpoint.agent }, this.#onProxyError as never);
  }

  #onResponse(proxyRes: WithExchange<IncomingMessage>, req: WithExchange<IncomingMessage>): void {
    const ex = req[EXCHANGE];
    if (!ex || ex.settled) {
      proxyRes.destroy();
      return;
    }
    ex.settled = true;
    if (ex.timer) { clearTimeout(ex.timer); ex.timer = undefined; }
    ex.proxyRes = proxyRes;
    proxyRes[EXCHANGE] = ex;
    proxyRes.on('error', ignore);
    const headers = responseHeaderList(proxyRes.rawHeaders, proxyRes.headers.connection);
    headers.push(this.#hooks.requestIdHeader(), ex.requestId);
    if (ex.closeAfter || this.#hooks.draining()) headers.push('connection', 'close');
    const status = proxyRes.statusCode ?? 502;
    try {
      ex.res.writeHead(status, proxyRes.statusMessage, headers);
    } catch {
      // Node refuses a header value the upstream's parser let through (e.g. a bad reason phrase).
      ex.settled = false;
      proxyRes.destroy();
      this.#hooks.fail(ex, 'GW_ERR_UPSTREAM_BAD_RESPONSE');
      return;
    }
    ex.status = status;
    proxyRes.on('data', countBytes);
    proxyRes.on('close', onUpstreamBodyClose);
    proxyRes.pipe(ex.res);
  }

  /**
   * Tunnels a WebSocket upgrade. Both sockets are destroyed together on error or close (http-proxy leaks one side:
   * issues 1510, 877); `onError` answers on the raw socket when no 101 was sent.
   */
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, endpoint: EndpointState, onError: (err: Error) => void): void {
    this.#proxy.ws(req, socket, head, { target: endpoint.target as never, agent: false as never }, onError as never);
  }

  close(): void {
    this.#proxy.close();
  }
}
