import http from 'node:http';
import type http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ServerLimits } from '../config/gateway-config.js';
import type { EdgeServer } from './edge-server.js';

/** Streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS), as nginx's default. */
export const MAX_CONCURRENT_STREAMS = 100;
/** What nghttp2 may hold for one session (header tables, queued frames) before it refuses new streams, in MB. */
export const MAX_SESSION_MEMORY_MB = 10;
/** RST_STREAM frames a client may send: a burst, then this many per second (rapid reset, CVE-2023-44487). */
export const STREAM_RESET_BURST = 100;
export const STREAM_RESET_RATE = 33;

/**
 * The HTTP/2 side of the TLS listener (docs/tls.md, "HTTP/2"): the settings a client is told and the bounds on what
 * it may make the gateway hold. Past a bound nghttp2 refuses the stream or ends the session with GOAWAY; the
 * process is never at risk. A header list is bounded by `server.maxHeaderBytes` as an HTTP/1.1 head is.
 */
export function http2Options(limits: ServerLimits): http2.SecureServerOptions {
  return {
    settings: {
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: limits.maxHeaderBytes,
      enablePush: false,
    },
    maxHeaderListPairs: limits.maxHeaders * 2 + 8,   // past this the stream is reset; up to it, 431 (inspect-request.ts)
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    maxSettings: 32,                                 // entries in one SETTINGS frame
    maxOutstandingPings: 10,                         // PINGs sent and not yet acknowledged
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    streamResetBurst: STREAM_RESET_BURST,
    streamResetRate: STREAM_RESET_RATE,
  } as http2.SecureServerOptions;
}

const sessions = new WeakMap<EdgeServer, Set<http2.ServerHttp2Session>>();
/** The TLS sockets of the HTTP/2 connections: what a forced close destroys (a session's own destroy may never end). */
const h2Sockets = new WeakMap<EdgeServer, Set<TLSSocket>>();
const openStreams = new WeakMap<http2.ServerHttp2Session, number>();

/**
 * Tracks the HTTP/2 sessions of `server` and their sockets: a session with no open stream for
 * `server.keepAliveTimeoutMs` is closed (GOAWAY), as an idle HTTP/1.1 keep-alive connection is; a protocol error ends
 * its session only, logged at debug.
 */
export function watchSessions(server: http2.Http2SecureServer, limits: () => ServerLimits, log: Logger): void {
  const set = new Set<http2.ServerHttp2Session>();
  sessions.set(server, set);
  const sockets = new Set<TLSSocket>();
  h2Sockets.set(server, sockets);
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol !== 'h2') return;   // HTTP/1.1 ones are the HTTP server's (closeAllConnections)
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    set.add(session);
    openStreams.set(session, 0);
    session.on('close', () => set.delete(session));
    session.on('stream', (stream) => {
      openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
      stream.once('close', () => openStreams.set(session, (openStreams.get(session) ?? 1) - 1));
    });
    // Any frame re-arms it; it fires after that long without one, and closes the session only if no stream is open.
    session.setTimeout(limits().keepAliveTimeoutMs, () => {
      if (openStreams.get(session) === 0) session.close();
    });
  });
  server.on('sessionError', (err: NodeJS.ErrnoException, session: http2.ServerHttp2Session) => {
    log.debug({ event: 'http2-session-error', err: err.code, message: err.message, peer: session.socket?.remoteAddress }, 'HTTP/2 session error');
  });
}

/**
 * A drain's start: idle HTTP/1.1 connections close now, and every HTTP/2 session gets GOAWAY and closes once its open
 * streams have ended (`session.close()`; Node 22's server.close() does not tell sessions, later lines do).
 */
export function closeIdleConnections(server: EdgeServer): void {
  (server as http.Server).closeIdleConnections();
  for (const session of sessions.get(server) ?? []) session.close();
}

/**
 * Closes every connection now (a drain's grace is over): HTTP/1.1 ones, and on an HTTP/2 listener the sockets of its
 * sessions. Not `session.destroy()`: it sends GOAWAY and lets go of the socket only once a write under way has ended,
 * and a write to a client that stopped reading (or, on Node 22, one that went away while answers were being written)
 * never ends, so the socket, and the drain waiting for it, would stay forever.
 */
export function closeAllConnections(server: EdgeServer): void {
  const sockets = h2Sockets.get(server);
  if (sockets === undefined) { (server as http.Server).closeAllConnections(); return; }
  http.Server.prototype.closeAllConnections.call(server as unknown as http.Server);
  for (const socket of sockets) socket.destroy();
}
