/**
 * forwardAuth (docs/policies.md) against a real auth service on 127.0.0.1: up (2xx lets through with copyHeaders,
 * anything else relayed with its status, body and challenge), slow (504 at timeoutMs) and down (503), each with the
 * request id; a refused request never reaches the upstream; a client that hangs up ends the auth call with it.
 */
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { configProblems } from '../helpers/config-problems.js';
import { freePort } from '../helpers/free-port.js';
import { listenOnLoopback } from '../helpers/listen-loopback.js';
import { policyYaml, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());
const asked: http.IncomingHttpHeaders[] = [];
const held: http.ServerResponse[] = [];
/** Held auth calls whose connection the gateway closed before they were answered. */
let abandoned = 0;
const auth = await listenOnLoopback(http.createServer((req, res) => {
  asked.push(req.headers);
  const token = req.headers['x-token'];
  if (token === 'good') { res.writeHead(200, { 'x-user': 'alice', 'x-secret': 'not-copied' }); res.end(); return; }
  if (token === 'slow') {
    held.push(res);
    res.on('close', () => { if (!res.writableFinished) abandoned++; });
    return;
  }
  res.writeHead(401, { 'www-authenticate': 'Bearer realm="sso"', 'content-type': 'text/plain', 'x-internal': 'no' });
  res.end('sign in first');
}));
t.teardown(() => { for (const res of held) res.destroy(); return auth.close(); });
const closedPort = await freePort();

const g = await startPolicyGateway(policyYaml(upstream.url, `  sso: { forwardAuth: { url: "${auth.url}/verify", copyHeaders: [X-User], consumerHeader: x-user, timeoutMs: 300 } }
  sso-down: { forwardAuth: { url: "http://127.0.0.1:${closedPort}/verify", timeoutMs: 300 } }
  sso-patient: { forwardAuth: { url: "${auth.url}/verify", timeoutMs: 60000 } }
  once: { rateLimit: { requests: 1, per: 1h, key: route } }`, `  - { name: app, match: { path: /app }, service: svc, policies: [sso] }
  - { name: down, match: { path: /down }, service: svc, policies: [sso-down] }
  - { name: patient, match: { path: /patient }, service: svc, policies: [sso-patient, once] }
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

t.test('a client that hangs up ends the auth call; the policies after it do not run for it', async (t) => {
  const before = { held: held.length, abandoned, upstream: upstream.requests.length };
  const client = net.connect(g.gateway.address().port, '127.0.0.1');
  t.teardown(() => client.destroy());
  client.on('error', () => {});
  client.write('GET /patient HTTP/1.1\r\nHost: gw\r\nx-token: slow\r\n\r\n');
  await waitFor(() => held.length > before.held, 5000, 'the auth service holding the call');
  client.destroy();
  // timeoutMs is 60 s: only the client's leaving can end the call this soon.
  await waitFor(() => abandoned > before.abandoned, 10_000, 'the auth call aborted');
  t.equal(upstream.requests.length, before.upstream, 'nothing forwarded');
  const next = await send(`${g.url4}/patient`, { 'x-token': 'good' });
  t.equal(next.status, 200, 'the rate limit after it did not count the request that left (1 per hour)');
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
