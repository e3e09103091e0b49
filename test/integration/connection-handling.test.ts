/**
 * docs/bad-inputs.md rows 28-30: how connections are used. HTTP/1.0 framing and keep-alive, pipelining, and Upgrade
 * requests on routes that do not tunnel.
 * Raw bytes over a socket to the gateway running in-process (test/helpers/bad-inputs.ts), and what the recording
 * upstreams received.
 */
import t from 'tap';
import { assertGatewayError, CLOSE_WAIT_MS, echoed, mark, only, parseResponses, startBadInputGateways } from '../helpers/bad-inputs.js';
import { waitFor } from '../helpers/capture-log.js';

const g = await startBadInputGateways();
const { send, all: ALL, main } = g;

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
  await g.idle();
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
  await g.idle();
  t.same(m.started().map((x) => x.url), ['/h2c'], 'the upstream sees the request, never /smuggled');
  const q = m.recorded()[0];
  t.equal(q?.headers.upgrade, undefined, 'Upgrade not forwarded');
  t.equal(q?.headers['http2-settings'], undefined, 'HTTP2-Settings not forwarded');
  t.notMatch(q?.headers.connection ?? '', /upgrade/i);
});

t.test('row 30: an h2c request served as plain HTTP/1.1 ends its exchange: an access line, nothing left in flight', async (t) => {
  const before = g.gw.gateway.load.signals('svc', 1000, 1000).inFlight;
  const r = await send('GET /h2c-ends HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
  t.equal(only(r).status, 200);
  await g.attemptsEnded();
  await t.resolves(waitFor(() => g.gw.logs.some((l) => l.log === 'access' && l.path === '/h2c-ends'), 2000, 'the access line'), 'the access line is written');
  t.equal(g.gw.gateway.load.signals('svc', 1000, 1000).inFlight, before, 'the in-flight count is back where it was');
});
