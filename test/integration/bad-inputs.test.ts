/**
 * docs/bad-inputs.md, rows 1-30 and 33: raw bytes over a socket to the gateway running in-process, and what a
 * recording upstream received. Each test checks both sides: what the client got, and that nothing it should not
 * have (a smuggled request, a hop-by-hop header, the raw path) reached the upstream.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { routesYaml, startGateway } from '../helpers/gateway-under-test.js';
import { rawRequest, type RawResult } from '../helpers/raw-http.js';
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../helpers/recording-upstream.js';

// ---------------------------------------------------------------------------------------------------------------
// Reading raw answers

interface ParsedResponse {
  readonly status: number;
  /** Lower-case names; repeated fields joined with ', '. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Splits what the server sent into responses, framed by Content-Length, chunked coding, or the close. */
function parseResponses(text: string): ParsedResponse[] {
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

function only(r: RawResult): ParsedResponse {
  const all = parseResponses(r.text);
  return all[0] ?? { status: NaN, headers: {}, body: '' };
}

/** The gateway's own error: the status, a JSON body with the stable code and a request id equal to the header's. */
function assertGatewayError(t: Test, res: ParsedResponse, status: number, code: string): void {
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
interface Started {
  readonly url: string;
  closed: boolean;
  complete: boolean;
}

interface Watched {
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
function mark(...ws: Watched[]) {
  const from = ws.map((w) => ({ recorded: w.up.requests.length, started: w.started.length }));
  return {
    recorded: (i = 0): RecordedRequest[] => ws[i]!.up.requests.slice(from[i]!.recorded),
    started: (i = 0): Started[] => ws[i]!.started.slice(from[i]!.started),
    allStarted: (): Started[] => ws.flatMap((w, i) => w.started.slice(from[i]!.started)),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 1000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

function echoed(res: ParsedResponse): { url: string; headers: Record<string, string | string[]> } {
  try { return JSON.parse(res.body) as { url: string; headers: Record<string, string> }; } catch { return { url: '', headers: {} }; }
}

// ---------------------------------------------------------------------------------------------------------------
// A raw upstream: broken HTTP (row 33), and an answer sent before the request body was read (row 12)

const BROKEN: Record<string, string> = {
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

interface RawUpstream {
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

const main = await watchedUpstream();   // svc: the catch-all route
const api = await watchedUpstream();    // api: the /api prefix
const vhostUp = await watchedUpstream();
const raw = await startRawUpstream();

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
const SMALL_BODY_BYTES = 64;

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

const ALL = [main, api, vhostUp];
/** How long a connection that should stay open is watched; well below keepAliveTimeoutMs and headersTimeoutMs. */
const CLOSE_WAIT_MS = 800;

/** A request the gateway should answer and then close by itself: no `Connection: close` from the client. */
function send(data: string | Buffer | (string | Buffer)[], waitMs = CLOSE_WAIT_MS, gapMs = 0): Promise<RawResult> {
  return rawRequest(gw.port, data, waitMs, gapMs);
}

/** Node's parser refuses these; the gateway's clientError handler answers with its JSON error and closes. */
async function assertParserRefuses(t: Test, name: string, bytes: string, status = 400): Promise<void> {
  const m = mark(...ALL);
  const r = await send(bytes);
  t.equal(r.status, status, `${name}: ${status}`);
  t.match(r.text, /\r\n\r\n\{"error":"GW_ERR_[A-Z_]+","message":"[^"]+","request_id":"[0-9a-f-]{36}"/, `${name}: JSON error with a request id`);
  t.ok(r.closed, `${name}: connection closed`);
  await sleep(20);
  t.same(m.allStarted().map((s) => s.url), [], `${name}: the upstream sees nothing`);
}

// ---------------------------------------------------------------------------------------------------------------
// Rows 1-6: framing and header syntax that Node's parser refuses on its own (pinned here: never insecureHTTPParser)

t.test('row 1: refuses CL+TE with 400, closes, and the upstream never sees /smuggled', async (t) => {
  const m = mark(...ALL);
  const r = await send('POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n'
    + '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n');
  t.equal(r.status, 400);
  t.ok(r.closed, 'connection closed');
  t.equal(r.text.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer only: the tail was not parsed as a second request');
  await sleep(20);
  t.same(m.allStarted(), [], 'the upstream sees 0 requests');
  t.notOk(ALL.some((w) => w.up.requests.some((q) => q.url.includes('smuggled'))), 'never /smuggled');
});

t.test('row 2: refuses duplicate or malformed Content-Length with 400 and closes', async (t) => {
  const variants: Record<string, string> = {
    differ: 'Content-Length: 4\r\nContent-Length: 5',
    same: 'Content-Length: 4\r\nContent-Length: 4',
    list: 'Content-Length: 4, 4',
    plus: 'Content-Length: +4',
  };
  for (const [name, cl] of Object.entries(variants)) {
    await assertParserRefuses(t, name, `POST / HTTP/1.1\r\nHost: t\r\n${cl}\r\n\r\nbodyGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n`);
  }
});

t.test('row 3: refuses obfuscated Transfer-Encoding with 400 and closes', async (t) => {
  const variants: Record<string, string> = {
    'chunked not final': 'Transfer-Encoding: chunked, identity',
    'unknown coding only': 'Transfer-Encoding: gzip',
    xchunked: 'Transfer-Encoding: xchunked',
    'two TE lines': 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity',
    'obs-fold': 'Transfer-Encoding:\r\n chunked',
    'space before colon': 'Transfer-Encoding : chunked',
  };
  for (const [name, te] of Object.entries(variants)) {
    await assertParserRefuses(t, name, `POST / HTTP/1.1\r\nHost: t\r\n${te}\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n`);
  }
});

t.test('row 4: refuses obs-fold in any header with 400', async (t) => {
  await assertParserRefuses(t, 'obs-fold', 'GET / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n b\r\n\r\n');
});

t.test('row 5: refuses bare LF, bare CR and NUL with 400', async (t) => {
  await assertParserRefuses(t, 'bare LF', 'GET / HTTP/1.1\nHost: t\n\n');
  await assertParserRefuses(t, 'bare CR', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n');
  await assertParserRefuses(t, 'NUL', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n');
});

t.test('row 6: refuses a space before the colon and a header line starting with a space with 400', async (t) => {
  await assertParserRefuses(t, 'space before colon', 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 4\r\n\r\nbody');
  await assertParserRefuses(t, 'leading space', 'POST / HTTP/1.1\r\n Content-Length: 4\r\nHost: t\r\n\r\nbody');
});

// ---------------------------------------------------------------------------------------------------------------
// Rows 7-13: framing, sizes and time

t.test('row 7: refuses HTTP/1.0 with Transfer-Encoding with 400, closes, nothing upstream', async (t) => {
  const m = mark(...ALL);
  const r = await send('POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n');
  assertGatewayError(t, only(r), 400, 'GW_ERR_BAD_FRAMING');
  t.ok(r.closed, 'connection closed');
  await sleep(20);
  t.same(m.allStarted(), [], 'the upstream sees nothing');
});

t.test('row 8: refuses a request head over maxHeaderBytes with 431, nothing upstream', async (t) => {
  await assertParserRefuses(t, '20 KiB header value', `GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431);
  await assertParserRefuses(t, '20 KiB URI', `GET /${'a'.repeat(20 * 1024)} HTTP/1.1\r\nHost: t\r\n\r\n`, 431);
});

t.test('row 8: refuses a 9 KiB request target with 414 (server.maxUriBytes), nothing upstream', async (t) => {
  const m = mark(...ALL);
  const r = await send(`GET /${'a'.repeat(9 * 1024)} HTTP/1.1\r\nHost: t\r\n\r\n`);
  assertGatewayError(t, only(r), 414, 'GW_ERR_URI_TOO_LONG');
  t.ok(r.closed, '9 KiB URI: connection closed');
  t.same(m.allStarted(), [], '9 KiB URI: the upstream sees nothing');
});

t.test('row 9: answers 431 past 100 headers instead of truncating, and accepts exactly 100', async (t) => {
  const m = mark(...ALL);
  const many = 'a: 1\r\n'.repeat(2500);
  const r = await send(`GET / HTTP/1.1\r\nHost: t\r\n${many}\r\n`);
  assertGatewayError(t, only(r), 431, 'GW_ERR_TOO_MANY_HEADERS');
  t.ok(r.closed, 'connection closed');

  const over = await send(`GET / HTTP/1.1\r\nHost: t\r\n${'a: 1\r\n'.repeat(99)}Connection: close\r\n\r\n`);   // 101 fields
  assertGatewayError(t, only(over), 431, 'GW_ERR_TOO_MANY_HEADERS');
  t.same(m.allStarted(), [], 'the upstream sees nothing of either');

  const limit = await send(`GET /hundred HTTP/1.1\r\nHost: t\r\n${'a: 1\r\n'.repeat(98)}Connection: close\r\n\r\n`);   // 100 fields
  t.equal(only(limit).status, 200, 'exactly 100 headers pass');
  t.same(m.recorded().map((q) => q.url), ['/hundred']);
});

t.test('row 10: closes a slowloris head with 408 after the headers timeout', async (t) => {
  const m = mark(...ALL);
  const drip = [...'X-Slow: aaaaaaaaaaaaaaaaaaaa'];
  const r = await send(['GET / HTTP/1.1\r\nHost: t\r\n', ...drip], 4000, 300);
  t.equal(r.status, 408);
  t.ok(r.closed, 'connection closed');
  // Node checks deadlines every 250 ms (connectionsCheckingInterval); before the request timeout, so it was this one.
  t.ok(r.ms >= HEADERS_TIMEOUT_MS - 50 && r.ms < REQUEST_TIMEOUT_MS - 50, `closed at ${r.ms} ms`);
  t.same(m.allStarted(), [], 'the upstream sees nothing');
});

t.test('row 11: closes a slow body with 408 after the request timeout; a small body never reached the upstream', async (t) => {
  const m = mark(...ALL);
  const drip = [...'x'.repeat(40)];
  const r = await send(['POST /slow-body HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n', ...drip], 5000, 300);
  t.equal(r.status, 408);
  t.ok(r.closed, 'connection closed');
  t.ok(r.ms >= REQUEST_TIMEOUT_MS - 50 && r.ms < REQUEST_TIMEOUT_MS + 1000, `closed at ${r.ms} ms`);
  // Bodies up to retry.bufferBodyBytes are read whole before an endpoint is chosen (so they can be replayed).
  t.same(m.allStarted(), [], 'the upstream saw nothing of it');
});

t.test('row 11: a slow large body streams upstream, and the upstream request is aborted at the 408', async (t) => {
  const m = mark(...ALL);
  const drip = [...'x'.repeat(40)];
  const r = await send(['POST /slow-body HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n', ...drip], 5000, 300);
  t.equal(r.status, 408);
  t.ok(r.closed, 'connection closed');
  t.same(m.started().map((s) => s.url), ['/slow-body'], 'the body was streaming upstream');
  t.ok(await until(() => m.started().every((s) => s.closed)), 'the upstream request is closed');
  t.notOk(m.started().some((s) => s.complete), 'and was aborted, not completed');
  t.same(m.recorded(), [], 'the upstream never got a whole request');
});

t.test('row 12: refuses a Content-Length over the route limit with 413 before reading, and closes', async (t) => {
  const m = mark(...ALL);
  const r = await send('POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\nsome of the body');
  assertGatewayError(t, only(r), 413, 'GW_ERR_BODY_TOO_LARGE');
  t.equal(only(r).headers.connection, 'close', 'Connection: close');
  t.ok(r.closed, 'connection closed');
  t.same(m.allStarted(), [], 'the upstream sees nothing');
});

t.test('row 12: answers 413 to Expect: 100-continue over the limit without sending 100', async (t) => {
  const m = mark(...ALL);
  const r = await send('POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n');
  t.notMatch(r.text, /^HTTP\/1\.1 100/m, 'no 100 Continue');
  assertGatewayError(t, only(r), 413, 'GW_ERR_BODY_TOO_LARGE');
  t.ok(r.closed, 'connection closed');
  t.same(m.allStarted(), [], 'the upstream sees nothing');

  // Under the limit the same request gets its 100 and goes through: the refusal above was about the size.
  const ok = await send(['POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'body'], 1000, 100);
  t.match(ok.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, 'under the limit: 100 then 200');
  t.same(m.recorded().map((q) => q.body.toString()), ['body']);
});

t.test('row 12: stops a chunked body past the route limit with 413 or a cut, and aborts the upstream request', async (t) => {
  const m = mark(...ALL);
  const chunk = `14\r\n${'x'.repeat(20)}\r\n`;   // 20 bytes each; the limit is 64
  const r = await send(['POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n', ...Array(10).fill(chunk)], 2000, 50);
  t.ok(r.closed, 'connection closed');
  if (r.status !== null) assertGatewayError(t, only(r), 413, 'GW_ERR_BODY_TOO_LARGE');
  t.ok(r.ms < 1000, `stopped early (${r.ms} ms), not after the whole body`);
  t.ok(await until(() => m.started().every((s) => s.closed)), 'every upstream request is closed');
  t.notOk(m.started().some((s) => s.complete), 'none completed');
  t.same(m.recorded(), [], 'the upstream never got a whole request');
});

t.test('row 12: stops a chunked body past the limit even after the upstream answered early', async (t) => {
  const before = raw.connections.length;
  const chunk = `14\r\n${'x'.repeat(20)}\r\n`;
  const r = await send(['POST /early HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n', ...Array(10).fill(chunk)], 3000, 50);
  const res = only(r);
  t.equal(res.status, 200, 'the upstream\'s early answer is relayed');
  t.equal(res.body, 'ok');
  t.ok(r.closed, 'connection closed');
  t.ok(r.ms < 1000, `stopped reading at the limit (${r.ms} ms), not at the request timeout`);
  const c = raw.connections[before];
  t.ok(c && await until(() => c.closed), 'the upstream request is aborted');
  const forwarded = (c?.rest.match(/x/g) ?? []).length;
  t.ok(forwarded > 0 && forwarded < 10 * 20, `the upstream got ${forwarded} of ${10 * 20} body bytes`);
});

t.test('row 13: refuses malformed chunked coding with 400 and closes', async (t) => {
  const variants: Record<string, string> = {
    'size zz': 'zz\r\nbody\r\n0\r\n\r\n',
    'size overflow': 'ffffffffffffffffff\r\nbody\r\n0\r\n\r\n',
    'missing CRLF after data': '4\r\nbodyX0\r\n\r\n',
  };
  for (const [name, body] of Object.entries(variants)) {
    const m = mark(...ALL);
    const r = await send(`POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    t.equal(r.status, 400, `${name}: 400`);
    t.ok(r.closed, `${name}: connection closed`);
    t.ok(await until(() => m.started().every((s) => s.closed)), `${name}: any upstream request is closed`);
    t.same(m.recorded(), [], `${name}: the upstream never got a whole request`);
  }
  // An oversized chunk extension (CVE-2024-22019): the gateway answers 400 where Node's own handler would send 413;
  // either status refuses it, and the connection is closed.
  const m = mark(...ALL);
  const r = await send(`POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4;${'e'.repeat(20 * 1024)}\r\nbody\r\n0\r\n\r\n`);
  t.ok(r.status === 400 || r.status === 413, `20 KiB chunk extension: ${r.status}`);
  t.ok(r.closed, '20 KiB chunk extension: connection closed');
  t.ok(await until(() => m.started().every((s) => s.closed)), '20 KiB chunk extension: any upstream request is closed');
  t.same(m.recorded(), [], '20 KiB chunk extension: the upstream never got a whole request');
});

t.test('row 13: aborts the upstream request when a body already streaming turns out malformed', async (t) => {
  const m = mark(...ALL);
  const r = await send(['POST /streaming HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', 'zz\r\n'], 2000, 200);
  t.equal(r.status, 400);
  t.ok(r.closed, 'connection closed');
  t.same(m.started().map((s) => s.url), ['/streaming'], 'the body was streaming upstream');
  t.ok(await until(() => m.started().every((s) => s.closed)), 'the upstream request is closed');
  t.notOk(m.started().some((s) => s.complete), 'and was aborted, not completed');
  t.same(m.recorded(), []);
});

// ---------------------------------------------------------------------------------------------------------------
// Rows 14-21: Host, target and path

t.test('row 14: refuses a missing, duplicate or invalid Host with 400', async (t) => {
  await assertParserRefuses(t, 'missing', 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n');
  await assertParserRefuses(t, 'empty', 'GET / HTTP/1.1\r\nHost: \r\n\r\n');
  const variants: Record<string, string> = {
    duplicate: 'Host: a\r\nHost: a',
    'different duplicates': 'Host: t\r\nHost: evil.example',
    userinfo: 'Host: u@t',
    path: 'Host: t/x',
    list: 'Host: a, b',
    'bad port': 'Host: t:80x',
  };
  for (const [name, host] of Object.entries(variants)) {
    const m = mark(...ALL);
    const r = await send(`GET / HTTP/1.1\r\n${host}\r\n\r\n`);
    assertGatewayError(t, only(r), 400, 'GW_ERR_BAD_HOST');
    t.ok(r.closed, `${name}: connection closed`);
    t.same(m.allStarted(), [], `${name}: the upstream sees nothing`);
  }
});

t.test('row 15: routes on the exact lower-cased, port-stripped host; an unknown host gets 404, never an upstream', async (t) => {
  const m = mark(vhostUp);
  for (const host of ['evil.example', 'evilapi.example', 'api.example.evil.example', 'xapi.example', 'example']) {
    const r = await rawRequest(vhost.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, CLOSE_WAIT_MS);
    assertGatewayError(t, only(r), 404, 'GW_ERR_NO_ROUTE');
  }
  t.same(m.allStarted(), [], 'the upstream sees none of the unknown hosts');

  const r = await rawRequest(vhost.port, 'GET /x HTTP/1.1\r\nHost: API.Example:8080\r\nConnection: close\r\n\r\n', CLOSE_WAIT_MS);
  t.equal(only(r).status, 200, 'API.Example:8080 is api.example');
  const seen = m.recorded();
  t.equal(seen.length, 1);
  t.equal(seen[0]?.headers.host, 'api.internal', 'the upstream gets the configured Host, not the client\'s');
});

t.test('row 16: routes and forwards an absolute-form target by its authority, consistently', async (t) => {
  const m = mark(vhostUp);
  const wrong = await rawRequest(vhost.port, 'GET http://evil.example/x HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n', CLOSE_WAIT_MS);
  assertGatewayError(t, only(wrong), 404, 'GW_ERR_NO_ROUTE');
  t.same(m.allStarted(), [], 'the Host header did not win over the authority');

  const right = await rawRequest(vhost.port, 'GET http://api.example/x?q=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n', CLOSE_WAIT_MS);
  t.equal(only(right).status, 200, 'the authority routes');
  t.same(m.recorded().map((q) => q.url), ['/x?q=1'], 'the upstream gets origin-form');

  const n = mark(main);
  const r = await send('GET http://Other.Example/api/../y HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
  t.equal(only(r).status, 200);
  const q = n.recorded()[0];
  t.equal(q?.url, '/y', 'the authority form is normalized like any path');
  t.equal(q?.headers.host, 'Other.Example', 'Host is the authority, as routed');
  t.equal(q?.headers['x-forwarded-host'], 'Other.Example');

  const bad = await send('GET ftp://t/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
  assertGatewayError(t, only(bad), 400, 'GW_ERR_BAD_PATH');
  t.equal(n.recorded().length, 1, 'a non-http absolute URI goes nowhere');
});

t.test('row 17: refuses * except for OPTIONS, and a target with a fragment, with 400', async (t) => {
  const m = mark(...ALL);
  const star = await send('GET * HTTP/1.1\r\nHost: t\r\n\r\n');
  assertGatewayError(t, only(star), 400, 'GW_ERR_BAD_PATH');
  t.ok(star.closed, 'GET *: connection closed');

  const frag = await send('GET /a#b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
  assertGatewayError(t, only(frag), 400, 'GW_ERR_BAD_PATH');

  const options = await send('OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
  t.equal(only(options).status, 200, 'OPTIONS * is answered by the gateway');
  t.match(only(options).headers.allow, /GET/);
  await sleep(20);
  t.same(m.allStarted(), [], 'the upstream sees none of them');
});

/** One request with Connection: close; returns the response and the URLs each upstream recorded for it. */
async function through(target: string): Promise<{ res: ParsedResponse; main: string[]; api: string[] }> {
  const m = mark(main, api);
  const res = only(await send(`GET ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`));
  return { res, main: m.recorded(0).map((q) => q.url), api: m.recorded(1).map((q) => q.url) };
}

t.test('row 18: removes dot-segments before routing and forwards only the result', async (t) => {
  const a = await through('/api/../admin');
  t.equal(a.res.status, 200);
  t.same([a.main, a.api], [['/admin'], []], '/api/../admin is /admin: the catch-all route, never the raw form');
  const b = await through('/api/./x/../y?a=../b');
  t.same([b.main, b.api], [[], ['/api/y?a=../b']], 'the query is left alone');
  const c = await through('/../../etc/passwd');
  t.same([c.main, c.api], [['/etc/passwd'], []], 'no climbing above the root');
});

t.test('row 19: refuses encoded separators, NUL and dot-segments with 400; decodes unreserved escapes once', async (t) => {
  for (const target of ['/api/%2e%2e/admin', '/api%2f..%2fadmin', '/api%2F..%2Fadmin', '/api/%5c..%5cadmin', '/api/a%00b', '/api/.%2E/admin', '/a\\b']) {
    const r = await through(target);
    assertGatewayError(t, r.res, 400, 'GW_ERR_BAD_PATH');
    t.same([r.main, r.api], [[], []], `${target}: the upstream sees nothing`);
  }
  const r = await through('/%61pi/%7Euser/caf%c3%a9');
  t.same([r.main, r.api], [[], ['/api/~user/caf%C3%A9']], '/%61pi is /api for the router and the upstream alike');
});

t.test('row 20: merges slashes before matching; a prefix matches whole segments only', async (t) => {
  const a = await through('//admin');
  t.same([a.main, a.api], [['/admin'], []], '//admin is forwarded as the /admin that was routed');
  const b = await through('//api//x');
  t.same([b.main, b.api], [[], ['/api/x']]);
  const c = await through('/apiary');
  t.same([c.main, c.api], [['/apiary'], []], '/apiary is not under /api');
  const d = await through('/api');
  t.same([d.main, d.api], [[], ['/api']]);
});

t.test('row 21: keeps CRLF escapes encoded and never echoes an unsafe client value into a response header', async (t) => {
  const r = await through('/x%0d%0aSet-Cookie:%20a=b');
  t.equal(r.res.status, 200);
  t.same(r.main, ['/x%0D%0ASet-Cookie:%20a=b'], 'forwarded still encoded');
  t.equal(r.res.headers['set-cookie'], undefined, 'no header was injected');

  const m = mark(main);
  const bad = only(await send('GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: a%0d%0aSet-Cookie:%20b\r\nConnection: close\r\n\r\n'));
  t.match(bad.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an unsafe request id is replaced by a fresh one');
  t.equal(m.recorded()[0]?.headers['x-request-id'], bad.headers['x-request-id'], 'and that one goes upstream');
  const good = only(await send('GET / HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\nConnection: close\r\n\r\n'));
  t.equal(good.headers['x-request-id'], 'abc-123', 'a safe one is kept');

  const err = only(await send('GET /a#%0d%0aX-Injected:%201 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'));
  assertGatewayError(t, err, 400, 'GW_ERR_BAD_PATH');
  t.equal(err.headers['x-injected'], undefined);
});

// ---------------------------------------------------------------------------------------------------------------
// Rows 22-27: headers and methods

t.test('row 22: strips hop-by-hop headers and every header named in Connection, both ways', async (t) => {
  const m = mark(main);
  const r = await send('GET /hop HTTP/1.1\r\nHost: t\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=99\r\n'
    + 'TE: trailers\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nUpgrade: foo\r\nX-Kept: k\r\n\r\n');
  const res = only(r);
  t.equal(res.status, 200);
  const q = m.recorded()[0];
  t.ok(q, 'forwarded');
  const names = (q?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  for (const h of ['x-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection', 'upgrade']) {
    t.notOk(names.includes(h), `${h} not forwarded`);
  }
  t.notMatch(q?.headers.connection ?? '', /close|secret/i, 'the client\'s Connection is not forwarded');
  t.equal(q?.headers['x-kept'], 'k', 'end-to-end headers are');
  for (const h of ['x-up-secret', 'keep-alive', 'proxy-authenticate']) t.equal(res.headers[h], undefined, `response: ${h} not relayed`);
  t.equal(res.headers.connection, 'close', 'the client still gets the close it asked for');
  t.ok(r.closed);
});

t.test('row 23: strips a Trailer header on GET and serves the request', async (t) => {
  const m = mark(main);
  const r = await send('GET / HTTP/1.1\r\nHost: t\r\nTrailer: X-Foo\r\nConnection: close\r\n\r\n');
  t.equal(only(r).status, 200);
  t.equal(m.recorded()[0]?.headers.trailer, undefined, 'Trailer not forwarded');
  const again = await send('GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
  t.equal(only(again).status, 200, 'the gateway is still up');
});

t.test('row 24: replaces a spoofed X-Forwarded-For with the peer and drops client forwarding headers', async (t) => {
  const m = mark(main);
  const r = await send('GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\n'
    + 'X-Forwarded-Port: 443\r\nForwarded: for=1.2.3.4;host=evil\r\nX-Real-IP: 1.2.3.4\r\nConnection: close\r\n\r\n');
  t.equal(only(r).status, 200);
  const h = m.recorded()[0]?.headers ?? {};
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'XFF = the peer only');
  t.equal(h['x-forwarded-host'], 't', 'XF-Host is the Host the gateway routed on');
  t.equal(h['x-forwarded-proto'], 'http', 'XF-Proto is what the gateway saw');
  t.equal(h['x-forwarded-port'], undefined);
  t.equal(h.forwarded, undefined);
  t.equal(h['x-real-ip'], undefined);
});

t.test('row 25: drops headers with underscores so they cannot alias X-Forwarded-For', async (t) => {
  const m = mark(main);
  const r = await send('GET / HTTP/1.1\r\nHost: t\r\nX_Forwarded_For: 1.2.3.4\r\nX_Custom: y\r\nConnection: close\r\n\r\n');
  t.equal(only(r).status, 200);
  const q = m.recorded()[0];
  const names = (q?.rawHeaders ?? []).filter((_, i) => i % 2 === 0);
  t.ok(names.length > 0, 'forwarded');
  t.same(names.filter((n) => n.includes('_')), [], 'no underscore header reaches the upstream');
  t.equal(q?.headers['x-forwarded-for'], '127.0.0.1');
});

t.test('row 26: refuses bad method tokens with 400 and TRACE, CONNECT or a method the route does not allow with 405', async (t) => {
  await assertParserRefuses(t, 'G@T', 'G@T / HTTP/1.1\r\nHost: t\r\n\r\n');
  await assertParserRefuses(t, 'FOO', 'FOO / HTTP/1.1\r\nHost: t\r\n\r\n');

  const m = mark(...ALL);
  const trace = await send('TRACE / HTTP/1.1\r\nHost: t\r\n\r\n');
  assertGatewayError(t, only(trace), 405, 'GW_ERR_METHOD_NOT_ALLOWED');
  t.equal(only(trace).headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS', 'TRACE: Allow is set (RFC 9110 §15.5.6)');
  t.ok(trace.closed, 'TRACE: connection closed');

  // On `t` the catch-all route takes any method; ro.example has only a GET/HEAD route.
  const del = await rawRequest(vhost.port, 'DELETE / HTTP/1.1\r\nHost: ro.example\r\nConnection: close\r\n\r\n', CLOSE_WAIT_MS);
  assertGatewayError(t, only(del), 405, 'GW_ERR_METHOD_NOT_ALLOWED');
  t.equal(only(del).headers.allow, 'GET, HEAD', 'Allow lists what the route takes');

  const connect = await send('CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
  assertGatewayError(t, only(connect), 405, 'GW_ERR_METHOD_NOT_ALLOWED');
  t.match(connect.text, /\r\nallow: GET, HEAD/, 'CONNECT: Allow is set');
  t.ok(connect.closed, 'CONNECT: connection closed');
  await sleep(20);
  t.same(m.allStarted(), [], 'the upstream sees none of them');
});

t.test('row 27: refuses HTTP versions other than 1.x', async (t) => {
  const m = mark(...ALL);
  const v12 = await send('GET / HTTP/1.2\r\nHost: t\r\n\r\n');
  t.ok(v12.status === 400 || v12.status === 505, `HTTP/1.2: ${v12.status}`);
  t.ok(v12.closed, 'HTTP/1.2: connection closed');
  const v2 = await send('GET / HTTP/2.0\r\nHost: t\r\n\r\n');
  assertGatewayError(t, only(v2), 505, 'GW_ERR_VERSION_NOT_SUPPORTED');
  t.ok(v2.closed, 'HTTP/2.0: connection closed');
  await sleep(20);
  t.same(m.allStarted(), [], 'the upstream sees neither');
});

// ---------------------------------------------------------------------------------------------------------------
// Rows 28-30: connection handling

t.test('row 28: serves an HTTP/1.0 client without Host close-delimited, never chunked', async (t) => {
  const m = mark(main);
  const r = await send('GET /chunky HTTP/1.0\r\n\r\n');
  const res = only(r);
  t.equal(res.status, 200, 'the catch-all route answers without Host');
  t.equal(res.headers['transfer-encoding'], undefined, 'not chunked');
  t.equal(res.headers.connection, 'close');
  t.equal(res.body, 'ab', 'the body is delimited by the close');
  t.ok(r.closed, 'connection closed');
  t.same(m.recorded().map((q) => q.url), ['/chunky']);
});

t.test('row 28: keeps an HTTP/1.0 keep-alive connection open when asked to', async (t) => {
  const m = mark(main);
  const r = await send(['GET /one HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n', 'GET /two HTTP/1.0\r\nHost: t\r\n\r\n'], CLOSE_WAIT_MS, 200);
  const [one, two] = parseResponses(r.text);
  t.equal(one?.status, 200);
  t.match(one?.headers.connection, /keep-alive/i, 'Connection: keep-alive as asked');
  t.notOk(/chunked/i.test(one?.headers['transfer-encoding'] ?? ''), 'not chunked');
  t.equal(echoed(two ?? { status: 0, headers: {}, body: '' }).url, '/two', 'the second request used the same connection');
  t.equal(two?.headers.connection, 'close', 'the second did not ask for keep-alive');
  t.ok(r.closed);
  t.same(m.recorded().map((q) => q.url), ['/one', '/two']);
});

t.test('row 29: answers two pipelined requests in order, each with its own response', async (t) => {
  const m = mark(main);
  const r = await send('GET /slow/first HTTP/1.1\r\nHost: t\r\nX-Request-Id: first\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\nX-Request-Id: second\r\nConnection: close\r\n\r\n');
  const responses = parseResponses(r.text);
  t.same(responses.map((x) => x.status), [200, 200]);
  t.same(responses.map((x) => echoed(x).url), ['/slow/first', '/second'], 'in request order, though the first answer came last');
  t.same(responses.map((x) => x.headers['x-request-id']), ['first', 'second'], 'no response carries another request\'s id');
  t.same(responses.map((x) => echoed(x).headers['x-request-id']), ['first', 'second']);
  t.ok(r.closed);
  t.same(m.recorded().map((q) => q.url).sort(), ['/second', '/slow/first']);
});

t.test('row 30: refuses a WebSocket upgrade on a route without websocket and tunnels nothing', async (t) => {
  const m = mark(...ALL);
  const r = await send('GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n');
  t.notMatch(r.text, /^HTTP\/1\.1 101/m, 'no 101');
  assertGatewayError(t, only(r), 400, 'GW_ERR_UPGRADE_NOT_ALLOWED');
  t.ok(r.closed, 'connection closed');
  await sleep(20);
  t.same(m.allStarted(), [], 'the upstream sees nothing, not even the bytes after the head');
});

t.test('row 30: serves an h2c upgrade request as plain HTTP/1.1 and then closes', async (t) => {
  const m = mark(main);
  const r = await send('GET /h2c HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n'
    + 'GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n');
  t.notMatch(r.text, /^HTTP\/1\.1 101/m, 'no 101');
  t.equal(only(r).status, 200);
  t.equal(only(r).headers.connection, 'close');
  t.ok(r.closed, 'connection closed');
  t.equal(r.text.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer: the bytes after the head are not a request');
  await sleep(20);
  t.same(m.started().map((x) => x.url), ['/h2c'], 'the upstream sees the request, never /smuggled');
  const q = m.recorded()[0];
  t.equal(q?.headers.upgrade, undefined, 'Upgrade not forwarded');
  t.equal(q?.headers['http2-settings'], undefined, 'HTTP2-Settings not forwarded');
  t.notMatch(q?.headers.connection ?? '', /upgrade/i);
});

// ---------------------------------------------------------------------------------------------------------------
// Row 33: the upstream answers with broken HTTP

t.test('row 33: answers 502 with the gateway error to a malformed upstream response and discards that connection', async (t) => {
  for (const path of Object.keys(BROKEN)) {
    const before = raw.connections.length;
    const r = await send(`GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 3000);
    const res = only(r);
    assertGatewayError(t, res, 502, 'GW_ERR_UPSTREAM_BAD_RESPONSE');
    t.equal(r.text.indexOf('HTTP/1.1', 1), -1, `${path}: nothing of the upstream's bytes reaches the client`);
    t.equal(raw.connections.length, before + 1, `${path}: a new upstream connection, not a reused one`);
    t.ok(await until(() => raw.connections.slice(before).every((c) => c.closed)), `${path}: the upstream connection is discarded`);
  }
});
