/**
 * The setup the bad-input tests share (docs/bad-inputs.md): a gateway running in-process with a route per kind of
 * service, upstreams that record every request they start to receive, a raw upstream that answers with broken HTTP,
 * and a host-routed second gateway; raw bytes go in over a socket and both sides are checked: what the client got,
 * and that nothing it should not have (a smuggled request, a hop-by-hop header, the raw path) reached an upstream.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { waitFor } from './capture-log.js';
import { routesYaml, startGateway, type GatewayUnderTest } from './gateway-under-test.js';
import { rawRequest, type RawResult } from './raw-http.js';
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from './recording-upstream.js';

// ---------------------------------------------------------------------------------------------------------------
// Reading raw answers

export interface ParsedResponse {
  readonly status: number;
  /** Lower-case names; repeated fields joined with ', '. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Splits what the server sent into responses, framed by Content-Length, chunked coding, or the close. */
export function parseResponses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let rest = text;
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    rest = rest.slice(end + 4);
    let body = '';
    if (status >= 100 && status < 200) {
      // an interim response has no body
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = rest.slice(0, n);
      rest = rest.slice(n);
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      for (;;) {
        const eol = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, eol), 16);
        if (eol < 0 || Number.isNaN(size)) { rest = ''; break; }
        if (size === 0) { rest = rest.slice(rest.indexOf('\r\n\r\n', eol - 2) + 4); break; }
        body += rest.slice(eol + 2, eol + 2 + size);
        rest = rest.slice(eol + 2 + size + 2);
      }
    } else {
      body = rest;
      rest = '';
    }
    out.push({ status, headers, body });
  }
  return out;
}

export function only(r: RawResult): ParsedResponse {
  const all = parseResponses(r.text);
  return all[0] ?? { status: NaN, headers: {}, body: '' };
}

/** The gateway's own error: the status, a JSON body with the stable code and a request id equal to the header's. */
export function assertGatewayError(t: Test, res: ParsedResponse, status: number, code: string): void {
  t.equal(res.status, status, `answers ${status}`);
  t.match(res.headers['content-type'], /^application\/json/, 'with a JSON body');
  let body: { error?: unknown; request_id?: unknown } = {};
  try { body = JSON.parse(res.body) as typeof body; } catch { /* the asserts below fail */ }
  t.equal(body.error, code, `error code ${code}`);
  t.match(body.request_id, /^\S+$/, 'a request_id in the body');
  t.equal(body.request_id, res.headers['x-request-id'], 'the same request id in the header');
}

// ---------------------------------------------------------------------------------------------------------------
// What the upstreams saw

/** Every request an upstream started to receive, including those whose body never completed. */
export interface Started {
  readonly url: string;
  closed: boolean;
  complete: boolean;
}

export interface Watched {
  readonly up: RecordingUpstream;
  readonly started: Started[];
}

async function watchedUpstream(): Promise<Watched> {
  const up = await startRecordingUpstream(behaviour);
  const started: Started[] = [];
  up.server.on('request', (req: IncomingMessage) => {
    const s: Started = { url: req.url ?? '', closed: false, complete: false };
    started.push(s);
    req.once('close', () => { s.closed = true; s.complete = req.complete; });
  });
  t.teardown(() => up.close());
  return { up, started };
}

/** Echoes the request as JSON; a few paths answer differently to exercise the response side. */
function behaviour(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const url = req.url ?? '';
  const echo = JSON.stringify({ method: req.method, url, headers: req.headers, bodyBytes: body.length });
  if (url.startsWith('/chunky')) {
    // No Content-Length: the gateway has to frame this itself (chunked for 1.1 clients, close for 1.0).
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('a');
    res.end('b');
  } else if (url.startsWith('/hop')) {
    res.writeHead(200, { connection: 'X-Up-Secret', 'x-up-secret': '1', 'keep-alive': 'timeout=5', 'proxy-authenticate': 'Basic', 'content-type': 'application/json' });
    res.end(echo);
  } else if (url.startsWith('/slow')) {
    setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(echo) }); res.end(echo); }, 200);
  } else {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(echo) });
    res.end(echo);
  }
}

/** Counts from here on, for one test. */
export function mark(...ws: Watched[]) {
  const from = ws.map((w) => ({ recorded: w.up.requests.length, started: w.started.length }));
  return {
    recorded: (i = 0): RecordedRequest[] => ws[i]!.up.requests.slice(from[i]!.recorded),
    started: (i = 0): Started[] => ws[i]!.started.slice(from[i]!.started),
    allStarted: (): Started[] => ws.flatMap((w, i) => w.started.slice(from[i]!.started)),
  };
}

export function echoed(res: ParsedResponse): { url: string; headers: Record<string, string | string[]> } {
  try { return JSON.parse(res.body) as { url: string; headers: Record<string, string> }; } catch { return { url: '', headers: {} }; }
}

// ---------------------------------------------------------------------------------------------------------------
// A raw upstream: broken HTTP (row 33), and an answer sent before the request body was read (row 12)

export const BROKEN: Record<string, string> = {
  '/broken/dup-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok',
  '/broken/garbage': 'SSH-2.0-OpenSSH_9.6\r\n\r\n',
  '/broken/cr-in-header': 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok',
  '/broken/huge-head': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\nContent-Length: 2\r\n\r\nok`,
};

const EARLY = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

interface RawConnection {
  closed: boolean;
  /** Everything received after the first request head. */
  rest: string;
}

export interface RawUpstream {
  readonly port: number;
  readonly connections: RawConnection[];
}

async function startRawUpstream(): Promise<RawUpstream> {
  const connections: RawConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const c: RawConnection = { closed: false, rest: '' };
    connections.push(c);
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => { c.closed = true; sockets.delete(socket); });
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head.endsWith('\r\n\r\n')) { c.rest += chunk.toString('latin1'); return; }
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      c.rest = head.slice(end + 4);
      head = head.slice(0, end + 4);
      const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '';
      // Never closes by itself: the gateway has to discard the connection.
      socket.write(path === '/early' ? EARLY : BROKEN[path] ?? 'HTTP/1.1 500 Nope\r\nContent-Length: 0\r\n\r\n');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { port: (server.address() as net.AddressInfo).port, connections };
}

// ---------------------------------------------------------------------------------------------------------------
// The gateways under test

export const HEADERS_TIMEOUT_MS = 1000;
export const REQUEST_TIMEOUT_MS = 2000;
export const SMALL_BODY_BYTES = 64;
/** How long a connection that should stay open is watched; well below keepAliveTimeoutMs and headersTimeoutMs. */
export const CLOSE_WAIT_MS = 800;

export interface BadInputGateways {
  /** Routes /small (maxBodyBytes 64), /api, /broken and /early (the raw upstream), and / to `main`. */
  readonly gw: GatewayUnderTest;
  /** Only host-bound routes (api.example, and ro.example for GET and HEAD), to `vhostUp`, with a fixed upstream Host. */
  readonly vhost: GatewayUnderTest;
  readonly main: Watched;
  readonly api: Watched;
  readonly vhostUp: Watched;
  readonly raw: RawUpstream;
  /** The recording upstreams of both gateways. */
  readonly all: Watched[];
  /** A request the gateway should answer and then close by itself: no `Connection: close` from the client. */
  send(data: string | Buffer | (string | Buffer)[], waitMs?: number, gapMs?: number): Promise<RawResult>;
  /**
   * Resolves once neither gateway has a request in flight: every request it routed has ended, and with it every
   * upstream attempt. A gateway routes a request as its head is parsed, so once it has closed a connection, anything
   * it forwarded from that connection has by then reached the upstream or been aborted: a check that the upstream
   * saw nothing, made after this, can fail.
   */
  idle(): Promise<void>;
  /** Resolves once no endpoint of either gateway has an upstream attempt in flight. */
  attemptsEnded(): Promise<void>;
}

/** Starts the upstreams and both gateways; the test file's teardown stops them. */
export async function startBadInputGateways(): Promise<BadInputGateways> {
  const main = await watchedUpstream();   // svc: the catch-all route
  const api = await watchedUpstream();    // api: the /api prefix
  const vhostUp = await watchedUpstream();
  const raw = await startRawUpstream();

  // routesYaml puts `extra` right under the svc service, so it can add services and, back at the top level, `server`.
  const gw = await startGateway(routesYaml([main.up.url], `  - name: small
    match: { path: /small }
    service: svc
    maxBodyBytes: ${SMALL_BODY_BYTES}
  - name: api
    match: { path: /api }
    service: api
  - name: broken
    match: { path: /broken }
    service: raw
  - name: early
    match: { path: /early }
    service: raw
    maxBodyBytes: ${SMALL_BODY_BYTES}
  - name: root
    match: { path: / }
    service: svc
`, `  api:
    discovery: { type: static, endpoints: ["${api.up.url}"] }
  raw:
    discovery: { type: static, endpoints: ["http://127.0.0.1:${raw.port}"] }
    timeoutMs: 2000
    # Broken on purpose, request after request: each meets it once (no retry), and its breaker never takes it out.
    retry: { attempts: 0 }
    circuitBreaker: { enabled: false }
server:
  headersTimeoutMs: ${HEADERS_TIMEOUT_MS}
  requestTimeoutMs: ${REQUEST_TIMEOUT_MS}
  keepAliveTimeoutMs: 5000
`));
  t.teardown(() => gw.close());

  // Only host-bound routes: an unknown Host has nowhere to go. The upstream gets a fixed Host, never the client's.
  const vhost = await startGateway(routesYaml([vhostUp.up.url], `  - match: { host: api.example, path: / }
    service: svc
  - match: { host: ro.example, path: /, methods: [GET, HEAD] }
    service: svc
`, '    hostHeader: api.internal\n'));
  t.teardown(() => vhost.close());

  const services = (g: GatewayUnderTest) => [...g.gateway.current().services.entries()];
  const attempting = (g: GatewayUnderTest) => services(g).some(([, s]) => s.pool.endpoints.some((e) => e.inFlight > 0));
  const routing = (g: GatewayUnderTest) => services(g).some(([name]) => {
    const load = g.gateway.load.signals(name, 1000, 1000);
    return load.inFlight > 0 || load.waiting > 0;
  });
  return {
    gw, vhost, main, api, vhostUp, raw, all: [main, api, vhostUp],
    send: (data, waitMs = CLOSE_WAIT_MS, gapMs = 0) => rawRequest(gw.port, data, waitMs, gapMs),
    idle: async () => {
      await waitFor(() => ![gw, vhost].some((g) => routing(g) || attempting(g)), 5000, 'no request in flight in either gateway');
    },
    attemptsEnded: async () => {
      await waitFor(() => ![gw, vhost].some(attempting), 5000, 'no upstream attempt in flight in either gateway');
    },
  };
}

/** Node's parser refuses these; the gateway's clientError handler answers with its JSON error and closes. */
export async function assertParserRefuses(t: Test, g: BadInputGateways, name: string, bytes: string, status = 400): Promise<void> {
  const m = mark(...g.all);
  const r = await g.send(bytes);
  t.equal(r.status, status, `${name}: ${status}`);
  t.match(r.text, /\r\n\r\n\{"error":"GW_ERR_[A-Z_]+","message":"[^"]+","request_id":"[0-9a-f-]{36}"/, `${name}: JSON error with a request id`);
  t.ok(r.closed, `${name}: connection closed`);
  await g.idle();
  t.same(m.allStarted().map((s) => s.url), [], `${name}: the upstream sees nothing`);
}
