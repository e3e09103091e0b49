/**
 * forwardAuth (docs/policies.md) against a real auth service on 127.0.0.1: up (2xx lets through with copyHeaders,
 * anything else relayed with its status, body and challenge), slow (504 at timeoutMs) and down (503), each with the
 * request id; a refused request never reaches the upstream.
 */
import http from 'node:http';
import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { freePort } from '../helpers/free-port.js';
import { listenOnLoopback } from '../helpers/listen-loopback.js';
import { policyYaml, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());
const asked: http.IncomingHttpHeaders[] = [];
const held: http.ServerResponse[] = [];
const auth = await listenOnLoopback(http.createServer((req, res) => {
  asked.push(req.headers);
  const token = req.headers['x-token'];
  if (token === 'good') { res.writeHead(200, { 'x-user': 'alice', 'x-secret': 'not-copied' }); res.end(); return; }
  if (token === 'slow') { held.push(res); return; }
  res.writeHead(401, { 'www-authenticate': 'Bearer realm="sso"', 'content-type': 'text/plain', 'x-internal': 'no' });
  res.end('sign in first');
}));
t.teardown(() => { for (const res of held) res.destroy(); return auth.close(); });
const closedPort = await freePort();

const g = await startPolicyGateway(policyYaml(upstream.url, `  sso: { forwardAuth: { url: "${auth.url}/verify", copyHeaders: [X-User], consumerHeader: x-user, timeoutMs: 300 } }
  sso-down: { forwardAuth: { url: "http://127.0.0.1:${closedPort}/verify", timeoutMs: 300 } }`, `  - { name: app, match: { path: /app }, service: svc, policies: [sso] }
  - { name: down, match: { path: /down }, service: svc, policies: [sso-down] }
`));
t.teardown(() => g.close());

t.test('a 2xx lets the request through with copyHeaders; the client\'s copies are not believed', async (t) => {
  const r = await send(`${g.url4}/app/x?q=1`, { 'x-token': 'good', 'x-user': 'mallory' });
  t.equal(r.status, 200);
  const seen = upstream.requests.at(-1)?.headers ?? {};
  t.equal(seen['x-user'], 'alice');
  t.equal(seen['x-secret'], undefined, 'only copyHeaders are copied');
  const a = asked.at(-1) ?? {};
  t.equal(a['x-forwarded-uri'], '/app/x?q=1');
  t.equal(a['x-forwarded-method'], 'GET');
  t.equal(a['x-forwarded-for'], '127.0.0.1');
  t.equal(a['x-token'], 'good', 'the client\'s headers reach the auth service');
});

t.test('any other answer is the client\'s: status, body and challenge, with the request id; the upstream is not asked', async (t) => {
  const before = upstream.requests.length;
  const r = await send(`${g.url4}/app`, { 'x-token': 'bad' });
  t.equal(r.status, 401);
  t.equal(r.text, 'sign in first');
  t.equal(r.headers['www-authenticate'], 'Bearer realm="sso"');
  t.equal(r.headers['content-type'], 'text/plain');
  t.equal(r.headers['x-internal'], undefined);
  t.match(String(r.headers['x-request-id']), /\S/);
  t.equal(upstream.requests.length, before);
});

t.test('slow: 504 GW_ERR_AUTH_TIMEOUT at timeoutMs; down: 503 GW_ERR_AUTH_UNAVAILABLE', async (t) => {
  const before = upstream.requests.length;
  const slow = await send(`${g.url4}/app`, { 'x-token': 'slow' });
  t.equal(slow.status, 504);
  t.equal(slow.json().error, 'GW_ERR_AUTH_TIMEOUT');
  t.equal(slow.json().request_id, slow.headers['x-request-id']);
  const down = await send(`${g.url4}/down`);
  t.equal(down.status, 503);
  t.equal(down.json().error, 'GW_ERR_AUTH_UNAVAILABLE');
  t.equal(down.json().request_id, down.headers['x-request-id']);
  t.equal(upstream.requests.length, before);
});

t.test('gantry validate refuses a bad URL at file:line:col', async (t) => {
  t.same(configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  f: { forwardAuth: { url: "not a url" } }
routes:
  - { match: { path: / }, service: svc, policies: [f] }
`), ['routes.yaml:4:28: policies.f.forwardAuth.url: "not a url" is not an http:// or https:// URL']);
});
