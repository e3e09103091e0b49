import http, { ServerResponse, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../errors.js';
import type { EndpointState, EndpointTls } from '../upstream/endpoint-state.js';
import { responseHeaderList } from './forwarded-headers.js';
import { writeRawError } from './raw-error.js';
import { classifyUpstreamError } from './upstream-attempt.js';

/** One WebSocket handshake to forward, and what its caller holds for it. */
export interface TunnelRequest {
  readonly target: EndpointState['target'];
  /** The service's TLS context and name for an https:// endpoint (its `tls:`). */
  readonly tls: EndpointTls;
  /** The route's timeout: the handshake, connecting included, must end within it, else 504 GW_ERR_UPSTREAM_TIMEOUT. */
  readonly timeoutMs: number;
  readonly requestId: string;
  readonly requestIdHeader: string;
  /**
   * Once, when the handshake is over: the tunnel is open, the upstream's refusal is being relayed, the gateway
   * answered an error, or the client left. The config generation is not needed past this point.
   */
  handshakeDone(): void;
  /** Once, after handshakeDone, when the endpoint is no longer used: an answer ended, or the open tunnel closed. */
  endpointDone(): void;
}

const enum Phase { Handshake, Answer, Tunnel, Done }

function ignore(): void {}

/**
 * Forwards a WebSocket handshake over a connection of its own (a tunnel never goes back to a pool) and, on 101,
 * joins the two sockets, which are destroyed together. Any other answer of the upstream (a 401, a 404) is relayed
 * with the request id, framed by Node, and the connection closes after it; an upstream that cannot be reached,
 * fails or stays silent past `timeoutMs` gets the client the gateway's JSON error on the raw socket.
 */
export function tunnelWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, t: TunnelRequest): void {
  let phase = Phase.Handshake;
  let upstream: Socket | undefined;
  const upstreamReq = (t.target.protocol === 'https:' ? https : http).request({
    host: t.target.host, port: t.target.port, method: 'GET', path: req.url, headers: req.headers, agent: false, setHost: false, ...t.tls,
  });
  const timer = setTimeout(() => fail('GW_ERR_UPSTREAM_TIMEOUT'), t.timeoutMs);

  function handshakeOver(next: Phase): void {
    clearTimeout(timer);
    phase = next;
    t.handshakeDone();
  }

  function done(): void {
    if (phase === Phase.Done) return;
    if (phase === Phase.Handshake) handshakeOver(Phase.Done);
    phase = Phase.Done;
    t.endpointDone();
  }

  function fail(code: ErrorCode): void {
    if (phase !== Phase.Handshake) return;
    upstreamReq.destroy();
    writeRawError(socket, code, t.requestId, t.requestIdHeader);
    // Read to the client's end of the connection, so that its close is seen and the socket goes.
    socket.resume();
    done();
  }

  if (head.length) socket.unshift(head);
  socket.once('close', () => {
    upstreamReq.destroy();
    upstream?.destroy();
    done();
  });
  upstreamReq.on('error', (err) => fail(classifyUpstreamError(err).code));

  upstreamReq.on('response', (res: IncomingMessage) => {
    if (phase !== Phase.Handshake) return void res.destroy();
    const answer = new ServerResponse(req);
    answer.shouldKeepAlive = false;
    answer.assignSocket(socket as Socket);
    try {
      const headers = responseHeaderList(res.rawHeaders.map((h) => Buffer.from(h, 'latin1')));
      headers.push(t.requestIdHeader, t.requestId);
      answer.writeHead(res.statusCode as number, res.statusMessage, headers);
    } catch {
      // Node refuses a header value the upstream's parser let through.
      answer.detachSocket(socket as Socket);
      return fail('GW_ERR_UPSTREAM_BAD_RESPONSE');
    }
    handshakeOver(Phase.Answer);
    // The upstream died mid-body: cut the client, so it sees the truncation.
    res.once('close', () => { if (!res.complete) socket.destroy(); });
    answer.once('finish', () => {
      answer.detachSocket(socket as Socket);
      socket.end();
      socket.resume();
      done();
    });
    res.pipe(answer);
  });

  upstreamReq.on('upgrade', (res: IncomingMessage, up: Socket, upHead: Buffer) => {
    if (phase !== Phase.Handshake) return void up.destroy();
    upstream = up;
    handshakeOver(Phase.Tunnel);
    up.on('error', ignore);
    up.once('close', () => socket.destroy());
    const raw = res.rawHeaders;
    let text = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
    for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
    socket.write(`${text}${t.requestIdHeader}: ${t.requestId}\r\n\r\n`);
    if (upHead.length) up.unshift(upHead);
    for (const s of [socket as Socket, up]) {
      s.setNoDelay?.(true);
      s.setKeepAlive?.(true);
    }
    up.pipe(socket).pipe(up);
  });

  upstreamReq.end();
}
