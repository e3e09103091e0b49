/**
 * docs/bad-inputs.md rows 8-12: sizes and time. An oversized head or target, too many headers, a slowloris head, a slow
 * body and a body past the route's limit, and what of each reached the upstream.
 * Raw bytes over a socket to the gateway running in-process (test/helpers/bad-inputs.ts), and what the recording
 * upstreams received.
 */
import t from 'tap';
import { assertGatewayError, assertParserRefuses, HEADERS_TIMEOUT_MS, mark, only, REQUEST_TIMEOUT_MS, startBadInputGateways } from '../helpers/bad-inputs.js';
import { waitFor } from '../helpers/capture-log.js';

const g = await startBadInputGateways();
const { send, all: ALL, raw } = g;

t.test('row 8: refuses a request head over maxHeaderBytes with 431, nothing upstream', async (t) => {
  await assertParserRefuses(t, g, '20 KiB header value', `GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431);
  await assertParserRefuses(t, g, '20 KiB URI', `GET /${'a'.repeat(20 * 1024)} HTTP/1.1\r\nHost: t\r\n\r\n`, 431);
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
  await t.resolves(waitFor(() => m.started().every((s) => s.closed), 5000, 'the upstream request closed'), 'the upstream request is closed');
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
  await t.resolves(waitFor(() => m.started().every((s) => s.closed), 5000, 'every upstream request closed'), 'every upstream request is closed');
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
  await t.resolves(waitFor(() => c?.closed === true, 5000, 'the upstream connection closed'), 'the upstream request is aborted');
  const forwarded = (c?.rest.match(/x/g) ?? []).length;
  t.ok(forwarded > 0 && forwarded < 10 * 20, `the upstream got ${forwarded} of ${10 * 20} body bytes`);
});
