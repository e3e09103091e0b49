import type { TLSSocket } from 'node:tls';
import pino, { type Logger } from 'pino';
import { isGantryFormat } from '../logger.js';
import type { CompiledRoute } from '../routing/compiled-route.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import { compileAccessFormat, hundredthsText, isoTimeOf } from './access-line-format.js';
import type { Exchange } from './exchange.js';

export { hundredthsText, isoTimeOf };

export interface AccessLog {
  /** The access logger (`log: "access"`), for lines other than requests (WebSocket upgrades). */
  readonly logger: Logger;
  /** Writes the access line of a finished exchange. */
  request(ex: Exchange, aborted: boolean): void;
  /** Hands the lines batched in this turn to the log stream now (before a shutdown's last flush, a reopen). */
  flush(): void;
}

const str = JSON.stringify;
// Printable ASCII without `"` and `\`: JSON.stringify would only add the quotes. Nearly every value (ids, hosts,
// methods, paths) is like this; testing for it and quoting costs half of stringifying (bench note in createAccessLog).
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const quote = (s: string): string => (PLAIN.test(s) ? `"${s}"` : str(s));

/** `format`, remembered per object for as long as the object lives. */
function formattedOnce<K extends object>(format: (key: K) => string): (key: K) => string {
  const cache = new WeakMap<K, string>();
  return (key) => {
    let text = cache.get(key);
    if (text === undefined) cache.set(key, text = format(key));
    return text;
  };
}

/** The TLS listener's connection of a request (its socket is a TLSSocket), or undefined on the plain listener. */
function tlsSocketOf(ex: Exchange): TLSSocket | undefined {
  // An HTTP/2 request's socket is a stand-in per stream; its session's (one per connection) reaches the TLSSocket
  // while the connection is open.
  if (ex.http2) {
    try {
      return ex.http2Socket?.destroyed === false ? ex.http2Socket : undefined;
    } catch {
      return undefined;   // the session let go of its socket (ERR_HTTP2_SOCKET_UNBOUND)
    }
  }
  const socket = ex.req.socket as TLSSocket | null;
  return socket?.encrypted === true ? socket : undefined;
}

/** The access line's fields, in the order they are written; undefined ones are left out (as pino does). */
function fields(ex: Exchange, aborted: boolean) {
  const tls = tlsSocketOf(ex);
  return {
    reqId: ex.requestId, method: ex.req.method, host: ex.host, path: ex.path, route: ex.route?.name, service: ex.route?.service,
    consumer: ex.consumer || undefined,
    endpoint: ex.endpoint?.address, status: ex.status, durationMs: ex.durationMs(), bytes: ex.bytes,
    attempts: ex.attempts > 1 ? ex.attempts : undefined, err: ex.errorCode, aborted: aborted || undefined,
    retryBudgetExhausted: ex.budgetExhausted || undefined,
    traceId: ex.traceId || undefined, proto: ex.http2 ? 'h2' : undefined,
    tls: tls?.getProtocol() ?? undefined, alpn: tls?.alpnProtocol || undefined,
  };
}

/**
 * The access log of `log` (a child with `log: "access"` is made here), in `format`: `json` (below), or `combined`
 * or a template (access-line-format.ts), written as text lines to the log's destination. On a logger made by createLogger, whose
 * format is fixed (level label, ISO time, no base), the line is built here as one template string, the same bytes
 * pino writes (test/unit/access-log.test.ts holds them equal): pino's generic serializer, walking the object key by
 * key, is about 8 % of the gateway's CPU on the 100-byte keep-alive benchmark and this line costs about a third of it
 * (bench/RESULTS.md). Any other logger (tests, embedders) gets `info(fields, 'request')` through pino.
 *
 * The lines of one event-loop turn go to the stream as one write, and the line up to the request id is made once per
 * millisecond.
 * Why: each write to pino's destination (sonic-boom 4) measures the UTF-8 length of its pending buffer, and an
 * asynchronous one costs a thread-pool round trip; a write per line to the asynchronous destination cost 3.3-3.8 µs
 * of CPU per line, a write per turn to a synchronous file 1.4-1.8 µs (bench/RESULTS.md "Access
 * log writes"). A line can therefore follow a gateway log line written later in the same turn; each line carries
 * its own time.
 * Building the line took 1.1-1.2 µs with JSON.stringify on every string, 0.7 µs with `quote` and the route's
 * fields cached (a microbenchmark of this template on the 2-core VM).
 */
export function createAccessLog(log: Logger, format = 'json'): AccessLog {
  const access = log.child({ log: 'access' });
  if (format !== 'json') return textAccessLog(log, access, format);
  if (!isGantryFormat(log)) {
    return { logger: access, request: (ex, aborted) => { if (log.isLevelEnabled('info')) access.info(fields(ex, aborted), 'request'); }, flush: () => {} };
  }
  const stream = (access as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym] as { write(s: string): void };
  const bindings = (access as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] as string;
  // A route's two fields and an endpoint's one, formatted once per object (they live as long as a config serves).
  const routeFields = formattedOnce((route: CompiledRoute) => `,"route":${str(route.name)},"service":${str(route.service)}`);
  const endpointField = formattedOnce((endpoint: EndpointState) => `,"endpoint":${quote(endpoint.address)}`);
  // A TLS connection's protocol and ALPN, formatted once per connection (its requests share them).
  const tlsFields = formattedOnce((socket: TLSSocket) => {
    const protocol = socket.getProtocol();
    return `${protocol ? `,"tls":${str(protocol)}` : ''}${socket.alpnProtocol ? `,"alpn":${str(socket.alpnProtocol)}` : ''}`;
  });
  // Fewer, longer pieces: each piece of the template costs a string join and a step of the flattening at the write
  // (callgrind, 100-byte keep-alive). Methods are the parser's few; statuses are 100-599; most lines share a host.
  const methodFields = new Map<string, string>();
  const methodField = (method: string): string => {
    let field = methodFields.get(method);
    if (field === undefined) methodFields.set(method, field = `","method":"${method}","host":`);
    return field;
  };
  const statusFields: string[] = [];
  const statusField = (status: number): string => (statusFields[status] ??= `,"status":${status},"durationMs":`);
  let lastHost = '';
  let lastHostQuoted = '""';
  const hostField = (host: string): string => (host === lastHost ? lastHostQuoted : (lastHostQuoted = quote(lastHost = host)));
  const isoTime = isoTimeOf();
  let batch = '';
  // The line's start up to the request id, made once per millisecond: fewer pieces to join and to flatten at the write.
  let headMs = 0;
  let head = '';
  function flush(): void {
    if (batch === '') return;
    const lines = batch;
    batch = '';
    stream.write(lines);
  }
  function request(ex: Exchange, aborted: boolean): void {
    // The root's level: a reload changes it there, and pino children keep the level they were made with.
    if (!log.isLevelEnabled('info')) return;
    const route = ex.route;
    const endpoint = ex.endpoint;
    const tls = tlsSocketOf(ex);
    const now = Date.now();
    if (now !== headMs) { headMs = now; head = `{"level":"info","time":"${isoTime(now)}"${bindings},"reqId":"`; }
    if (batch === '') setImmediate(flush);
    // The request id (request-id.ts), the method (a token Node's parser accepted) and the trace id (hex) never need
    // escaping; host and path may.
    batch += `${head}${ex.requestId}${methodField(ex.req.method as string)}${hostField(ex.host)},"path":${quote(ex.path)}${
      // The consumer (set only by a route's policies) in the route's piece: a line without one joins no extra piece.
      route === undefined ? '' : ex.consumer === '' ? routeFields(route) : `${routeFields(route)},"consumer":${quote(ex.consumer)}`}${endpoint === undefined ? '' : endpointField(endpoint)}${
      statusField(ex.status)}${hundredthsText(ex.durationHundredths())},"bytes":${ex.bytes}${
      ex.attempts > 1 ? `,"attempts":${ex.attempts}` : ''}${ex.errorCode === undefined ? '' : `,"err":${str(ex.errorCode)}`}${
      aborted ? ',"aborted":true' : ''}${ex.budgetExhausted ? ',"retryBudgetExhausted":true' : ''}${
      ex.traceId ? `,"traceId":"${ex.traceId}"` : ''}${
      // One piece for the connection's fields: an HTTP/1.x line pays no extra join for HTTP/2's.
      ex.http2 ? `,"proto":"h2"${tls === undefined ? '' : tlsFields(tls)}` : tls === undefined ? '' : tlsFields(tls)},"msg":"request"}\n`;
  }
  return { logger: access, request, flush };
}

/**
 * Text lines (`combined` or a template) to the log's destination, batched per event-loop turn as the JSON lines are:
 * the gateway's own lines stay JSON, so the access lines are the ones an Apache/nginx log tool reads.
 */
function textAccessLog(log: Logger, access: Logger, format: string): AccessLog {
  const line = compileAccessFormat(format);
  const stream = (access as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym] as { write(s: string): void };
  let batch = '';
  function flush(): void {
    if (batch === '') return;
    const lines = batch;
    batch = '';
    stream.write(lines);
  }
  function request(ex: Exchange, aborted: boolean): void {
    if (!log.isLevelEnabled('info')) return;
    if (batch === '') setImmediate(flush);
    batch += `${line(ex, aborted, Date.now())}\n`;
  }
  return { logger: access, request, flush };
}
