/**
 * docs/bad-inputs.md rows 22-27: headers, methods and versions. Hop-by-hop and client forwarding headers stripped or
 * replaced, underscore names dropped, and bad methods and versions refused before anything is forwarded.
 * Raw bytes over a socket to the gateway running in-process (test/helpers/bad-inputs.ts), and what the recording
 * upstreams received.
 */
import t from 'tap';
import { assertGatewayError, assertParserRefuses, CLOSE_WAIT_MS, mark, only, startBadInputGateways } from '../helpers/bad-inputs.js';
import { rawRequest } from '../helpers/raw-http.js';

const g = await startBadInputGateways();
const { send, all: ALL, vhost, main } = g;

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
  await assertParserRefuses(t, g, 'G@T', 'G@T / HTTP/1.1\r\nHost: t\r\n\r\n');
  await assertParserRefuses(t, g, 'FOO', 'FOO / HTTP/1.1\r\nHost: t\r\n\r\n');

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
  await g.idle();
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
  await g.idle();
  t.same(m.allStarted(), [], 'the upstream sees neither');
});
