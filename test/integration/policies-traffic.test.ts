/**
 * Traffic policies (docs/policies.md): header rules on the request and on every answer, redirects answered at the
 * edge, CORS preflights answered at the edge and CORS fields on actual answers; each checked at load with
 * file:line:col. A real gateway in this process, real upstreams on 127.0.0.1.
 */
import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { metricValue, policyYaml, send, startPolicyGateway, type Answer } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

/** A field's values as one comma-joined string ('' when absent), however the client split repeated fields. */
function field(a: Answer, name: string): string {
  const v = a.headers[name];
  return v === undefined ? '' : ([] as string[]).concat(v).join(', ');
}

const upstream = await startRecordingUpstream((req, res) => {
  res.writeHead(200, {
    'content-type': 'application/json', server: 'upstream/1.0', 'x-powered-by': 'php', 'x-upstream': 'yes',
    'access-control-allow-origin': '*', 'cache-control': 'max-age=60',
  });
  res.end(JSON.stringify({ url: req.url, headers: req.headers }));
});
t.teardown(() => upstream.close());

t.test('header rules change the request the upstream gets and every answer the client gets, the gateway\'s own too', async (t) => {
  const policies = `  api-headers:
    headers:
      request: { set: { x-env: prod }, add: { x-tag: gateway }, remove: [x-debug] }
      response: { set: { strict-transport-security: "max-age=31536000", cache-control: no-cache }, add: { x-served-by: gantry }, remove: [server, X-Powered-By] }
  office: { ipAllow: [10.0.0.0/8] }`;
  const routes = `  - { name: api, match: { path: /api }, service: svc, policies: [api-headers] }
  - { name: closed, match: { path: /closed }, service: svc, policies: [api-headers, office] }
  - { name: plain, match: { path: /plain }, service: svc }
`;
  const g = await startPolicyGateway(policyYaml(upstream.url, policies, routes));
  t.teardown(() => g.close());

  const r = await send(`${g.url4}/api/x`, { 'x-debug': '1', 'x-env': 'dev', 'x-tag': 'client' });
  t.equal(r.status, 200);
  const seen = (r.json().headers ?? {}) as Record<string, string>;
  t.equal(seen['x-env'], 'prod', 'set replaces what the client sent');
  t.equal(seen['x-tag'], 'client, gateway', 'add keeps what the client sent');
  t.equal(seen['x-debug'], undefined, 'remove takes it away before the upstream sees it');
  t.equal(seen['x-forwarded-for'], '::ffff:127.0.0.1', 'the gateway\'s own headers are still its own');
  t.equal(field(r, 'strict-transport-security'), 'max-age=31536000');
  t.equal(field(r, 'cache-control'), 'no-cache', 'set replaces the upstream\'s field');
  t.equal(field(r, 'x-served-by'), 'gantry');
  t.equal(field(r, 'server'), '', 'removed from the upstream\'s answer');
  t.equal(field(r, 'x-powered-by'), '', 'names are matched whatever their case');
  t.equal(field(r, 'x-upstream'), 'yes', 'other fields pass');
  t.match(field(r, 'x-request-id'), /\S/);

  const refused = await send(`${g.url4}/closed`);
  t.equal(refused.status, 403, 'a later policy refuses');
  t.equal(field(refused, 'strict-transport-security'), 'max-age=31536000', 'the gateway\'s own answer gets the response rules');
  t.equal(field(refused, 'cache-control'), 'no-cache');
  t.equal(refused.json().request_id, field(refused, 'x-request-id'));

  const plain = await send(`${g.url4}/plain`, { 'x-debug': '1' });
  t.equal(((plain.json().headers ?? {}) as Record<string, string>)['x-debug'], '1', 'a route without the policy is untouched');
  t.equal(field(plain, 'server'), 'upstream/1.0');
});

t.test('a header rule on a hop-by-hop, framing, forwarding or request-id header is refused at load, at file:line:col', async (t) => {
  const problems = configProblems(`server: { requestIdHeader: X-Trace-Id }
services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  a: { headers: { request: { remove: [X-Forwarded-For, connection], set: { host: evil } } } }
  b: { headers: { response: { remove: [content-length], set: { x-trace-id: "1" }, add: { "bad name": x } } } }
  c: { headers: { request: { set: { x-ok: "a\\u0001b" } } } }
  d: { headers: {} }
routes:
  - { match: { path: / }, service: svc, policies: [a, b, c, d] }
`);
  t.same(problems, [
    'routes.yaml:5:39: policies.a.headers.request.remove[0]: "x-forwarded-for" is the gateway\'s own header (hop-by-hop, framing, forwarding or the request id): a rule may not change it',
    'routes.yaml:5:56: policies.a.headers.request.remove[1]: "connection" is the gateway\'s own header (hop-by-hop, framing, forwarding or the request id): a rule may not change it',
    'routes.yaml:5:82: policies.a.headers.request.set.host: "host" is the gateway\'s own header (hop-by-hop, framing, forwarding or the request id): a rule may not change it',
    'routes.yaml:6:40: policies.b.headers.response.remove[0]: "content-length" is the gateway\'s own header (hop-by-hop, framing, forwarding or the request id): a rule may not change it',
    'routes.yaml:6:76: policies.b.headers.response.set.x-trace-id: "x-trace-id" is the gateway\'s own header (hop-by-hop, framing, forwarding or the request id): a rule may not change it',
    'routes.yaml:6:102: policies.b.headers.response.add.bad name: "bad name" is not a header name',
    'routes.yaml:7:43: policies.c.headers.request.set.x-ok: a header value may not hold control characters',
    'routes.yaml:8:17: policies.d.headers: must NOT have fewer than 1 properties',
  ]);
});

t.test('a redirect is answered at the edge: no upstream connection, placeholders filled from the request', async (t) => {
  const target = await startRecordingUpstream();
  t.teardown(() => target.close());
  let connections = 0;
  target.server.on('connection', () => { connections++; });
  const policies = `  old-docs: { redirect: { to: "https://docs.example.com{path}{query}", status: 301 } }
  same-host: { redirect: { to: "https://{host}/v2{path}" } }`;
  const routes = `  - { name: docs, match: { path: /docs }, service: svc, policies: [old-docs] }
  - { name: v1, match: { path: /v1 }, service: svc, policies: [same-host] }
`;
  const g = await startPolicyGateway(policyYaml(target.url, policies, routes));
  t.teardown(() => g.close());

  const r = await send(`${g.url4}/docs/a/../guide?lang=en&x=1`);
  t.equal(r.status, 301);
  t.equal(field(r, 'location'), 'https://docs.example.com/docs/guide?lang=en&x=1', 'the normalized path and the query');
  t.match(field(r, 'x-request-id'), /\S/);
  t.equal(r.text, '');
  const bare = await send(`${g.url4}/docs`);
  t.equal(field(bare, 'location'), 'https://docs.example.com/docs', 'no query: {query} is empty');
  const posted = await send(`${g.url4}/v1/items`, { host: 'API.Example.com:8080', 'content-type': 'text/plain' }, 'POST', 'body');
  t.equal(posted.status, 308, 'the default status keeps the method');
  t.equal(field(posted, 'location'), 'https://api.example.com/v2/v1/items', '{host} is the routing host');
  t.equal(connections, 0, 'the upstream was never connected to');
  t.equal(target.requests.length, 0);
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'old-docs', kind: 'redirect', reason: 'redirect' }), 2);
});

t.test('a redirect target that is not a URL or path, or names an unknown placeholder, is refused at load', async (t) => {
  const problems = configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  a: { redirect: { to: "https://x.example{pth}" } }
  b: { redirect: { to: "ftp://files.example/{path}" } }
  c: { redirect: { to: "docs{path}" } }
  d: { redirect: { to: "/new", status: 300 } }
routes:
  - { match: { path: / }, service: svc, policies: [a, b, c, d] }
`);
  t.same(problems, [
    'routes.yaml:4:24: policies.a.redirect.to: unknown placeholder "{pth}" (known: {path}, {query}, {host})',
    'routes.yaml:5:24: policies.b.redirect.to: "ftp://files.example/{path}" is neither an http(s) URL nor a path starting with /',
    'routes.yaml:6:24: policies.c.redirect.to: "docs{path}" is neither an http(s) URL nor a path starting with /',
    'routes.yaml:7:40: policies.d.redirect.status: must be one of: 301, 302, 303, 307, 308',
  ]);
});

const CORS = `  web-cors:
    cors: { origins: ["https://app.example.com"], methods: [GET, POST], headers: [authorization, content-type],
            exposeHeaders: [x-upstream], credentials: true, maxAgeS: 600 }
  office: { ipAllow: [10.0.0.0/8] }`;
const CORS_ROUTES = `  - { name: api, match: { path: /api }, service: svc, policies: [web-cors] }
  - { name: closed, match: { path: /closed }, service: svc, policies: [web-cors, office] }
`;

t.test('CORS: a preflight is answered at the edge, allowed or not; the upstream never sees it', async (t) => {
  const g = await startPolicyGateway(policyYaml(upstream.url, CORS, CORS_ROUTES));
  t.teardown(() => g.close());
  const before = upstream.requests.length;
  const ok = await send(`${g.url4}/api/items`, { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'Content-Type, Authorization' }, 'OPTIONS');
  t.equal(ok.status, 204);
  t.equal(field(ok, 'access-control-allow-origin'), 'https://app.example.com');
  t.equal(field(ok, 'access-control-allow-credentials'), 'true');
  t.equal(field(ok, 'access-control-allow-methods'), 'GET, POST');
  t.equal(field(ok, 'access-control-allow-headers'), 'authorization, content-type');
  t.equal(field(ok, 'access-control-max-age'), '600');
  t.equal(field(ok, 'vary'), 'Origin');
  for (const [why, headers] of [
    ['an origin not listed', { origin: 'https://evil.example', 'access-control-request-method': 'GET' }],
    ['a method not listed', { origin: 'https://app.example.com', 'access-control-request-method': 'DELETE' }],
    ['a header not listed', { origin: 'https://app.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-secret' }],
  ] as const) {
    const no = await send(`${g.url4}/api/items`, headers, 'OPTIONS');
    t.equal(no.status, 204, why);
    t.equal(Object.keys(no.headers).filter((h) => h.startsWith('access-control-')).length, 0, `${why}: no CORS field`);
  }
  t.equal(upstream.requests.length, before, 'no preflight reached the upstream');
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'web-cors', kind: 'cors', reason: 'preflight' }), 1);
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'web-cors', kind: 'cors', reason: 'preflight-refused' }), 3);
});

t.test('CORS: an allowed origin gets the fields on the actual answer, the gateway\'s errors too; another origin gets none', async (t) => {
  const g = await startPolicyGateway(policyYaml(upstream.url, CORS, CORS_ROUTES));
  t.teardown(() => g.close());
  const ok = await send(`${g.url4}/api/items`, { origin: 'https://app.example.com' });
  t.equal(ok.status, 200);
  t.equal(field(ok, 'access-control-allow-origin'), 'https://app.example.com', 'the upstream\'s own `*` is replaced');
  t.equal(field(ok, 'access-control-allow-credentials'), 'true');
  t.equal(field(ok, 'access-control-expose-headers'), 'x-upstream');
  t.equal(field(ok, 'vary'), 'Origin');
  const other = await send(`${g.url4}/api/items`, { origin: 'https://evil.example' });
  t.equal(other.status, 200, 'the request is served: CORS is the browser\'s to enforce');
  t.same(Object.keys(other.headers).filter((h) => h.startsWith('access-control-')), [], 'not even the upstream\'s `*`');
  t.equal(field(other, 'vary'), 'Origin');
  const refused = await send(`${g.url4}/closed`, { origin: 'https://app.example.com' });
  t.equal(refused.status, 403);
  t.equal(field(refused, 'access-control-allow-origin'), 'https://app.example.com', 'a page can read the gateway\'s refusal');
});

t.test('CORS options that would open answers to every site, or are not origins, are refused at load', async (t) => {
  const problems = configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  a: { cors: { origins: ["*"], credentials: true } }
  b: { cors: { origins: ["https://app.example.com/", "app.example.com", "*"] } }
  c: { cors: { origins: ["https://a.example"], methods: ["GET POST"] } }
routes:
  - { match: { path: / }, service: svc, policies: [a, b, c] }
`);
  t.same(problems, [
    'routes.yaml:4:26: policies.a.cors.origins[0]: "*" with credentials: true would let any site read answers made with its visitors\' cookies: list the origins',
    'routes.yaml:5:26: policies.b.cors.origins[0]: "https://app.example.com/" is not an origin (scheme://host[:port], no path, no trailing slash)',
    'routes.yaml:5:54: policies.b.cors.origins[1]: "app.example.com" is not an origin (scheme://host[:port], no path, no trailing slash)',
    'routes.yaml:5:73: policies.b.cors.origins[2]: "*" allows every origin: it must be the only entry',
    'routes.yaml:6:58: policies.c.cors.methods[0]: "GET POST" is not a method',
  ]);
});
