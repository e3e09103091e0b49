import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ErrorCode } from '../errors.js';
import { Selection } from '../resilience/endpoint-selector.js';
import { normalizeTarget } from '../routing/normalize-path.js';
import { deleteUnset, prepareUpstreamHeaders } from './forwarded-headers.js';
import { applyAnswerEdits } from '../policies/answer-edits.js';
import type { AnswerBodyFilter, AnswerEdit, PolicyExchange } from '../policies/policy.js';
import type { HandlerContext, RequestHandlers } from './handle-request.js';
import { inspectRequest, type InspectedRequest } from './inspect-request.js';
import { sendError, sendRelayed } from './error-response.js';
import { writeRawError } from './raw-error.js';
import { requestIdFrom } from './request-id.js';
import { applyTraceContext } from './trace-context.js';
import { tunnelWebSocket } from './websocket-tunnel.js';

const WEBSOCKET = /^websocket$/i;

/**
 * A request with `Connection: upgrade`. WebSocket upgrades on routes that allow them are tunnelled; any other
 * upgrade (h2c from `curl --http2`) is served as a plain HTTP/1.1 request on a connection that then closes, as nginx
 * does; a WebSocket upgrade on another route is refused. Nothing is tunnelled that the route did not ask for.
 */
export function createUpgradeHandler(ctx: HandlerContext, handlers: RequestHandlers) {
  return function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (!WEBSOCKET.test(String(req.headers.upgrade))) return servePlain(req, socket, handlers);

    const generation = ctx.holder.acquire();
    const idHeader = generation?.snapshot.config.server.requestIdHeader ?? 'x-request-id';
    const requestId = requestIdFrom(req.headers[idHeader]);
    // Refusals are answered at once; the generation is only needed until then.
    const refuse = (code: ErrorCode): void => {
      writeRawError(socket, code, requestId, idHeader);
      generation?.release();
    };
    if (!generation) return refuse('GW_ERR_INTERNAL');   // never so: see handle-request.ts
    const snapshot = generation.snapshot;

    const seen: InspectedRequest = { host: '', hostHeader: '' };
    const bad = inspectRequest(req, snapshot.config.server, seen);
    if (bad) return refuse(bad);
    const target = normalizeTarget(req.url as string);
    if (!target) return refuse('GW_ERR_BAD_PATH');
    const match = snapshot.router.match(req.method as string, seen.host, target.path, req.headers);
    if (match.kind !== 'route') return refuse(match.kind === 'none' ? 'GW_ERR_NO_ROUTE' : 'GW_ERR_METHOD_NOT_ALLOWED');
    const route = match.route.split === null ? match.route : match.route.split.pick(req);
    if (!route.config.websocket || req.method !== 'GET') return refuse('GW_ERR_UPGRADE_NOT_ALLOWED');
    const held = generation;
    const { path, search } = target;
    // The route's policies (authentication, IP rules, rate limits) guard its tunnels as they guard its requests.
    const policies = route.policies;
    if (policies === null) return tunnel('');
    const asked = new UpgradeRequest(req, requestId, socket, path, seen.host);
    policies.run(asked, (_, refusal) => {
      if (asked.closed) return held.release();
      if (refusal === undefined) return tunnel(asked.consumer);
      const edit = asked.answerEdits === null ? undefined : (headers: string[]) => applyAnswerEdits(asked, headers);
      answerOnSocket(req, socket, (res) => {
        if ('code' in refusal) {
          sendError(res, refusal.code, { requestId, requestIdHeader: idHeader, route: route.name, headers: refusal.headers, edit, close: true });
        } else {
          sendRelayed(res, refusal.relay.status, refusal.relay.headers, refusal.relay.body, { requestId, requestIdHeader: idHeader, edit, close: true });
        }
      });
      held.release();
    });

    /** `consumer`: who the route's authentication policy found the client to be ('' without one). */
    function tunnel(consumer: string): void {
      const service = snapshot.services.get(route.service);
      const endpoint = service?.selector.select(new Selection(), req, Date.now());
      if (!service || !endpoint) return refuse('GW_ERR_NO_ENDPOINT');

      const upgrade = req.headers.upgrade as string;
      prepareUpstreamHeaders(req.headers, {
        peer: req.socket.remoteAddress ?? '', trustedProxies: snapshot.trustedProxies, clientHost: seen.hostHeader,
        proto: (req.socket as TLSSocket).encrypted === true ? 'https' : 'http',
        requestIdHeader: idHeader, requestId,
      });
      const traceId = applyTraceContext(req.headers, snapshot.config.tracing);
      req.headers.connection = 'Upgrade';
      req.headers.upgrade = upgrade;
      if (service.config.hostHeader === 'endpoint') req.headers.host = endpoint.hostHeader;
      else if (service.config.hostHeader !== 'preserve') req.headers.host = service.config.hostHeader;
      req.url = route.rewrite(path) + search;
      deleteUnset(req.headers);   // Node's client refuses undefined header values

      // The handshake is a request in flight on its endpoint, and so is the open tunnel, for as long as it lasts: the
      // endpoint's load, as least-request and p2c weigh it. The generation is released once the handshake is over: a
      // tunnel needs only its two sockets and the endpoint's state, which the registry keeps while it is in flight.
      endpoint.inFlight++;
      ctx.accessLog()?.logger.info({ reqId: requestId, traceId: traceId || undefined, method: req.method, host: seen.host, path, route: route.name, service: route.service, endpoint: endpoint.address, consumer: consumer || undefined, upgrade: 'websocket', tls: (req.socket as TLSSocket).encrypted === true ? (req.socket as TLSSocket).getProtocol() : undefined }, 'upgrade');
      tunnelWebSocket(req, socket, head, {
        target: endpoint.target, tls: endpoint.tls, timeoutMs: route.config.timeoutMs, requestId, requestIdHeader: idHeader,
        handshakeDone: () => held.release(),
        endpointDone: () => ctx.registry.requestDone(endpoint),
      });
    }
  };
}

function servePlain(req: IncomingMessage, socket: Duplex, handlers: RequestHandlers): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody) return writeRawError(socket, 'GW_ERR_UPGRADE_NOT_ALLOWED', requestIdFrom(undefined), 'x-request-id');
  // Node stops parsing at an upgrade, so the request stream never ends by itself: it has no body, end it here.
  req.push(null);
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as never);
  // The server's own bookkeeping, which emits a response's 'close' (the end of its exchange: access line, in-flight
  // count, generation), does not know this response: it closes once it is written, or when the client leaves first.
  let closed = false;
  const close = (): void => { if (!closed) { closed = true; res.emit('close'); } };
  res.once('finish', () => { res.detachSocket(socket as never); socket.end(); process.nextTick(close); });
  socket.once('close', close);
  handlers.handle(req, res);
}

/** An upgrade request as its route's policies see it: it has no ServerResponse, its client is the raw socket. */
class UpgradeRequest implements PolicyExchange {
  consumer = '';
  answerHeaders: string[] | null = null;
  answerEdits: AnswerEdit[] | null = null;
  /** A tunnel's bytes are not an answer body: nothing filters them. */
  answerBody: AnswerBodyFilter | null = null;
  /** An upgrade has no body to copy. */
  bodyCopy: ((body: Buffer | null) => void) | null = null;
  #abort: AbortController | undefined;

  constructor(readonly req: IncomingMessage, readonly requestId: string, private readonly socket: Duplex, readonly path: string, readonly host: string) {}

  get closed(): boolean {
    return this.socket.destroyed;
  }

  get signal(): AbortSignal {
    if (!this.#abort) {
      const abort = new AbortController();
      this.#abort = abort;
      if (this.socket.destroyed) abort.abort();
      else this.socket.once('close', () => abort.abort());
    }
    return this.#abort.signal;
  }
}

/** An answer on an upgrade's socket through a ServerResponse (the request path's writers), then the connection ends. */
function answerOnSocket(req: IncomingMessage, socket: Duplex, write: (res: ServerResponse) => void): void {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as never);
  res.once('finish', () => { res.detachSocket(socket as never); socket.end(); });
  write(res);
}
