import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import type { ErrorCode } from '../errors.js';
import { AttemptFailure, type AttemptFailureKind } from '../resilience/is-retryable.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { EXCHANGE, type Exchange, type WithExchange } from './exchange.js';
import { responseHeaderList } from './forwarded-headers.js';

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const KIND_CODE: Record<AttemptFailureKind, ErrorCode> = {
  'connect': 'GW_ERR_UPSTREAM_CONNECT',
  'connect-timeout': 'GW_ERR_UPSTREAM_TIMEOUT',
  'reset': 'GW_ERR_UPSTREAM_RESET',
  'timeout': 'GW_ERR_UPSTREAM_TIMEOUT',
  'bad-response': 'GW_ERR_UPSTREAM_BAD_RESPONSE',
  'broken-circuit': 'GW_ERR_NO_ENDPOINT',
  'cancelled': 'GW_ERR_UPSTREAM_RESET',
};

/** Maps a socket or parser error of an upstream call to how the attempt failed. */
export function classifyUpstreamError(err: unknown): AttemptFailure {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (CONNECT_ERRORS.has(code)) return new AttemptFailure('connect', KIND_CODE.connect, true, { cause: err });
  if (code.startsWith('HPE_') || code === 'ERR_INVALID_CHAR') return new AttemptFailure('bad-response', KIND_CODE['bad-response'], false, { cause: err });
  return new AttemptFailure('reset', KIND_CODE.reset, false, { cause: err });
}

export function failure(kind: AttemptFailureKind): AttemptFailure {
  return new AttemptFailure(kind, KIND_CODE[kind], kind === 'connect-timeout' || kind === 'broken-circuit');
}

const ATTEMPT = Symbol('gantry.attempt');

/**
 * One try of one request against one endpoint: resolves with the upstream's response head, or rejects with an
 * AttemptFailure. Owns the per-try and connect timers and the endpoint's in-flight count for this try.
 */
export class Attempt {
  proxyReq: ClientRequest | undefined = undefined;
  proxyRes: IncomingMessage | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  connectTimer: NodeJS.Timeout | undefined = undefined;
  /** Set by our timers before they destroy the request, so the error that follows is classified right. */
  abortedAs: AttemptFailureKind | undefined = undefined;
  done = false;
  released = false;
  readonly startedAt = Date.now();

  constructor(
    readonly ex: Exchange,
    readonly endpoint: EndpointState,
    readonly connectTimeoutMs: number,
    readonly resolve: (res: IncomingMessage) => void,
    readonly reject: (err: AttemptFailure) => void,
    readonly onRelease: (a: Attempt) => void,
  ) {}

  fail(err: AttemptFailure): void {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    this.proxyReq?.destroy();
    this.release();
    this.reject(err);
  }

  /** The gateway gives up on this try (client gone, body over the limit): not the endpoint's fault. */
  cancel(): void {
    this.abortedAs = 'cancelled';
    this.fail(failure('cancelled'));
    this.proxyRes?.destroy();
  }

  clearTimers(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.connectTimer) { clearTimeout(this.connectTimer); this.connectTimer = undefined; }
  }

  /** The try is over for the endpoint (failed, or its response was read or dropped). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease(this);
  }
}

function onTryTimeout(a: Attempt): void {
  a.timer = undefined;
  a.abortedAs = 'timeout';
  a.fail(failure('timeout'));
}

function onConnectTimeout(a: Attempt): void {
  a.connectTimer = undefined;
  a.abortedAs = 'connect-timeout';
  a.fail(failure('connect-timeout'));
}

function ignore(): void {}

function countBytes(this: WithExchange<IncomingMessage>, chunk: Buffer): void {
  const ex = this[EXCHANGE];
  if (ex) ex.bytes += chunk.length;
}

function onUpstreamResponseClose(this: IncomingMessage & { [ATTEMPT]?: Attempt }): void {
  const a = this[ATTEMPT];
  if (!a) return;
  a.release();
  // The upstream died mid-body: cut the client connection so it sees the truncation instead of hanging.
  if (a.ex.proxyRes === this && !this.complete && !a.ex.res.writableEnded) a.ex.res.destroy();
}

/**
 * The http-proxy instance and its listeners. http-proxy opens the upstream request over the endpoint's agent and
 * pipes the body; the response head is written here (selfHandleResponse), so hop-by-hop headers never leak, Node
 * frames the response for this client, and a retryable answer can be dropped before the client sees anything.
 */
export class Forwarder {
  readonly #proxy = httpProxy.createProxyServer({ selfHandleResponse: true, xfwd: false, prependPath: false });

  constructor(private readonly onRelease: (a: Attempt) => void) {
    // @types/http-proxy's listener types omit the per-call options argument http-proxy passes.
    this.#proxy.on('proxyReq', ((proxyReq: ClientRequest & { [ATTEMPT]?: Attempt }, _req: unknown, _res: unknown, options: { attempt?: Attempt }) => {
      const a = options.attempt;
      if (!a) return;
      a.proxyReq = proxyReq;
      proxyReq[ATTEMPT] = a;
      if (a.done) { proxyReq.destroy(); return; }   // timed out or abandoned while waiting for a socket
      const socket = proxyReq.socket as Socket | null;
      if (socket?.connecting) {
        a.connectTimer = setTimeout(onConnectTimeout, a.connectTimeoutMs, a);
        socket.once('connect', () => { if (a.connectTimer) { clearTimeout(a.connectTimer); a.connectTimer = undefined; } });
      }
    }) as never);
    this.#proxy.on('proxyRes', (proxyRes: IncomingMessage & { [ATTEMPT]?: Attempt }) => {
      const a = ((proxyRes as IncomingMessage & { req?: ClientRequest }).req as ClientRequest & { [ATTEMPT]?: Attempt } | undefined)?.[ATTEMPT];
      if (!a || a.done) { proxyRes.destroy(); return; }
      a.done = true;
      a.clearTimers();
      a.proxyRes = proxyRes;
      proxyRes[ATTEMPT] = a;
      proxyRes.on('error', ignore);
      proxyRes.on('close', onUpstreamResponseClose);
      a.resolve(proxyRes);
    });
    this.#proxy.on('proxyReqWs', (proxyReq: ClientRequest, _req: IncomingMessage, socket: Duplex) => {
      socket.once('close', () => proxyReq.destroy());
      proxyReq.on('upgrade', (_res: IncomingMessage, upstream: Duplex) => {
        upstream.on('error', ignore);
        upstream.once('close', () => socket.destroy());
        socket.once('close', () => upstream.destroy());
      });
    });
    // A client reset while the upstream call runs: the exchange's close handler already destroyed both sides.
    this.#proxy.on('econnreset', ignore);
    // Only reached if a call forgot its callback; never let http-proxy re-throw and end the process.
    this.#proxy.on('error', ignore);
  }

  /**
   * Starts one attempt; `body` replays a buffered request body (undefined: stream the request itself).
   * tryTimeoutMs 0: no timer of its own (the route deadline covers the try).
   */
  attempt(ex: Exchange, endpoint: EndpointState, tryTimeoutMs: number, connectTimeoutMs: number, body: Readable | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const a = new Attempt(ex, endpoint, connectTimeoutMs, resolve, reject, this.onRelease);
      endpoint.inFlight++;
      ex.attempt = a;
      ex.endpoint = endpoint;
      if (tryTimeoutMs > 0) a.timer = setTimeout(onTryTimeout, tryTimeoutMs, a);
      const options = { target: endpoint.target as never, agent: endpoint.agent, buffer: body, attempt: a };
      this.#proxy.web(ex.req, ex.res, options as never, (err: Error) => {
        if (a.done) {
          // After the head: the upstream failed mid-body. The client connection is cut by the close handler.
          if (a.proxyRes !== undefined && ex.proxyRes === a.proxyRes && !ex.res.writableEnded) ex.res.destroy();
          return;
        }
        a.fail(a.abortedAs ? failure(a.abortedAs) : classifyUpstreamError(err));
      });
    });
  }

  /** Writes the chosen response head and streams the body to the client. Returns false if Node refused the head. */
  relay(ex: Exchange, proxyRes: IncomingMessage, requestIdHeader: string, close: boolean): boolean {
    ex.proxyRes = proxyRes;
    (proxyRes as WithExchange<IncomingMessage>)[EXCHANGE] = ex;
    const headers = responseHeaderList(proxyRes.rawHeaders, proxyRes.headers.connection);
    headers.push(requestIdHeader, ex.requestId);
    if (close) headers.push('connection', 'close');
    const status = proxyRes.statusCode ?? 502;
    try {
      ex.res.writeHead(status, proxyRes.statusMessage, headers);
    } catch {
      // Node refuses a header value the upstream's parser let through (e.g. a bad reason phrase).
      proxyRes.destroy();
      return false;
    }
    ex.status = status;
    proxyRes.on('data', countBytes);
    proxyRes.pipe(ex.res);
    return true;
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
