/**
 * docs/bad-inputs.md rows 14-21: Host, request target and path. Validation of Host, routing on the exact host and on the
 * absolute-form authority, and the path normalization that decides both the route and what is forwarded.
 * Raw bytes over a socket to the gateway running in-process (test/helpers/bad-inputs.ts), and what the recording
 * upstreams received.
 */
import t from 'tap';
import { assertGatewayError, assertParserRefuses, CLOSE_WAIT_MS, mark, only, type ParsedResponse, startBadInputGateways } from '../helpers/bad-inputs.js';
import { rawRequest } from '../helpers/raw-http.js';

const g = await startBadInputGateways();
const { send, all: ALL, vhost, main, api, vhostUp } = g;

t.test('row 14: refuses a missing, duplicate or invalid Host with 400', async (t) => {
  await assertParserRefuses(t, g, 'missing', 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n');
  await assertParserRefuses(t, g, 'empty', 'GET / HTTP/1.1\r\nHost: \r\n\r\n');
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
  await g.idle();
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
