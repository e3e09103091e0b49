/**
 * docs/bad-inputs.md rows 1-7 and 13: request framing and header syntax. Node's strict parser refuses most of it (rows 1-6, pinned here: never
 * insecureHTTPParser); the gateway refuses HTTP/1.0 with Transfer-Encoding (row 7) and aborts an upstream request
 * whose streaming body turns out malformed (row 13).
 * Raw bytes over a socket to the gateway running in-process (test/helpers/bad-inputs.ts), and what the recording
 * upstreams received.
 */
import t from 'tap';
import { assertGatewayError, assertParserRefuses, mark, only, startBadInputGateways } from '../helpers/bad-inputs.js';
import { waitFor } from '../helpers/capture-log.js';

const g = await startBadInputGateways();
const { send, all: ALL } = g;

t.test('row 1: refuses CL+TE with 400, closes, and the upstream never sees /smuggled', async (t) => {
  const m = mark(...ALL);
  const r = await send('POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n'
    + '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n');
  t.equal(r.status, 400);
  t.ok(r.closed, 'connection closed');
  t.equal(r.text.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer only: the tail was not parsed as a second request');
  await g.idle();
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
    await assertParserRefuses(t, g, name, `POST / HTTP/1.1\r\nHost: t\r\n${cl}\r\n\r\nbodyGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n`);
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
    await assertParserRefuses(t, g, name, `POST / HTTP/1.1\r\nHost: t\r\n${te}\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n`);
  }
});

t.test('row 4: refuses obs-fold in any header with 400', async (t) => {
  await assertParserRefuses(t, g, 'obs-fold', 'GET / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n b\r\n\r\n');
});

t.test('row 5: refuses bare LF, bare CR and NUL with 400', async (t) => {
  await assertParserRefuses(t, g, 'bare LF', 'GET / HTTP/1.1\nHost: t\n\n');
  await assertParserRefuses(t, g, 'bare CR', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n');
  await assertParserRefuses(t, g, 'NUL', 'GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n');
});

t.test('row 6: refuses a space before the colon and a header line starting with a space with 400', async (t) => {
  await assertParserRefuses(t, g, 'space before colon', 'POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 4\r\n\r\nbody');
  await assertParserRefuses(t, g, 'leading space', 'POST / HTTP/1.1\r\n Content-Length: 4\r\nHost: t\r\n\r\nbody');
});

t.test('row 7: refuses HTTP/1.0 with Transfer-Encoding with 400, closes, nothing upstream', async (t) => {
  const m = mark(...ALL);
  const r = await send('POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n');
  assertGatewayError(t, only(r), 400, 'GW_ERR_BAD_FRAMING');
  t.ok(r.closed, 'connection closed');
  await g.idle();
  t.same(m.allStarted(), [], 'the upstream sees nothing');
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
    await t.resolves(waitFor(() => m.started().every((s) => s.closed), 5000, `${name}: upstream requests closed`), `${name}: any upstream request is closed`);
    t.same(m.recorded(), [], `${name}: the upstream never got a whole request`);
  }
  // An oversized chunk extension (CVE-2024-22019): the gateway answers 400 where Node's own handler would send 413;
  // either status refuses it, and the connection is closed.
  const m = mark(...ALL);
  const r = await send(`POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4;${'e'.repeat(20 * 1024)}\r\nbody\r\n0\r\n\r\n`);
  t.ok(r.status === 400 || r.status === 413, `20 KiB chunk extension: ${r.status}`);
  t.ok(r.closed, '20 KiB chunk extension: connection closed');
  await t.resolves(waitFor(() => m.started().every((s) => s.closed), 5000, '20 KiB chunk extension: upstream requests closed'), '20 KiB chunk extension: any upstream request is closed');
  t.same(m.recorded(), [], '20 KiB chunk extension: the upstream never got a whole request');
});

t.test('row 13: aborts the upstream request when a body already streaming turns out malformed', async (t) => {
  const m = mark(...ALL);
  const r = await send(['POST /streaming HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', 'zz\r\n'], 2000, 200);
  t.equal(r.status, 400);
  t.ok(r.closed, 'connection closed');
  t.same(m.started().map((s) => s.url), ['/streaming'], 'the body was streaming upstream');
  await t.resolves(waitFor(() => m.started().every((s) => s.closed), 5000, 'the upstream request closed'), 'the upstream request is closed');
  t.notOk(m.started().some((s) => s.complete), 'and was aborted, not completed');
  t.same(m.recorded(), []);
});
