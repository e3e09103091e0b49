/**
 * ipAllow and ipDeny (docs/policies.md): IPv4 and IPv6 CIDRs on the client address as server.trustedProxies decides
 * it; a refusal is 403 JSON with the request id and never reaches the upstream; a route without policies is served as
 * before; the decisions are counted per policy and reason. Real clients over 127.0.0.1 and ::1.
 */
import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { metricValue, policyYaml, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());

const POLICIES = `  v4-only: { ipAllow: [127.0.0.0/8] }
  v6-only: { ipAllow: ["::1/128"] }
  no-v6: { ipDeny: ["::1"] }
  office: { ipAllow: [10.0.0.0/8, "2001:db8::/32"] }`;
const ROUTES = `  - { name: open, match: { path: /open }, service: svc }
  - { name: v4, match: { path: /v4 }, service: svc, policies: [v4-only] }
  - { name: v6, match: { path: /v6 }, service: svc, policies: [v6-only] }
  - { name: nov6, match: { path: /nov6 }, service: svc, policies: [no-v6] }
  - { name: office, match: { path: /office }, service: svc, policies: [office] }
`;

t.test('IPv4 and IPv6 blocks let in and keep out the clients they name; a refusal never reaches the upstream', async (t) => {
  const g = await startPolicyGateway(policyYaml(upstream.url, POLICIES, ROUTES));
  t.teardown(() => g.close());
  const cases: [string, string, number][] = [
    [g.url4, '/open', 200], [g.url6, '/open', 200],
    [g.url4, '/v4', 200], [g.url6, '/v4', 403],
    [g.url4, '/v6', 403], [g.url6, '/v6', 200],
    [g.url4, '/nov6', 200], [g.url6, '/nov6', 403],
    [g.url4, '/office', 403], [g.url6, '/office', 403],
  ];
  for (const [base, path, status] of cases) {
    const before = upstream.requests.length;
    const r = await send(`${base}${path}`);
    t.equal(r.status, status, `${base}${path}`);
    t.equal(upstream.requests.length - before, status === 200 ? 1 : 0, `${base}${path}: the upstream saw it only when allowed`);
    if (status === 403) {
      const body = r.json();
      t.equal(body.error, 'GW_ERR_FORBIDDEN');
      t.equal(body.request_id, r.headers['x-request-id'], 'the body names the request id of the header');
      t.match(String(body.request_id), /\S/);
      t.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    }
  }
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'v4-only', kind: 'ipAllow', reason: 'ip' }), 1);
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_allowed_total', { policy: 'v4-only', kind: 'ipAllow' }), 1);
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'office', kind: 'ipAllow', reason: 'ip' }), 2);
});

t.test('the client address is the peer, or with trustedProxies the first untrusted X-Forwarded-For hop from the right', async (t) => {
  const yaml = (trusted: string) => policyYaml(upstream.url, POLICIES, ROUTES, `server: { trustedProxies: [${trusted}] }\n`);
  const g = await startPolicyGateway(yaml(''));
  t.teardown(() => g.close());
  t.equal((await send(`${g.url4}/office`, { 'x-forwarded-for': '10.1.2.3' })).status, 403, 'an untrusted peer cannot claim an office address');
  t.equal(await g.reload(yaml('127.0.0.1, "::1"')), 'applied');
  t.equal((await send(`${g.url4}/office`, { 'x-forwarded-for': '10.1.2.3' })).status, 200, 'a trusted proxy vouches for 10.1.2.3');
  t.equal((await send(`${g.url6}/office`, { 'x-forwarded-for': '2001:db8::7' })).status, 200, 'IPv6 client behind an IPv6 proxy');
  t.equal((await send(`${g.url4}/office`, { 'x-forwarded-for': '10.1.2.3, 192.0.2.1' })).status, 403, 'the nearest untrusted hop is the client');
  t.equal((await send(`${g.url4}/office`, { 'x-forwarded-for': '192.0.2.1, 10.1.2.3, 127.0.0.1' })).status, 200, 'trusted hops are skipped');
  t.equal((await send(`${g.url4}/office`, { 'x-forwarded-for': 'not-an-ip' })).status, 403, 'garbage stops at the last trusted proxy');
  t.equal((await send(`${g.url4}/v4`)).status, 200, 'no X-Forwarded-For: the peer');
});

t.test('gantry validate reports bad CIDRs, unknown kinds and unknown policy names at file:line:col', async (t) => {
  const problems = configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  a: { ipAllow: [10.0.0.0/33, "::1/129", 300.1.1.1, 10.0.0.1] }
  b: { ipDeny: [] }
  c: { ipBlock: [10.0.0.0/8] }
routes:
  - { match: { path: / }, service: svc, policies: [a, nope] }
`);
  t.same(problems, [
    'routes.yaml:4:18: policies.a.ipAllow[0]: "10.0.0.0/33" is not an IP address or CIDR block',
    'routes.yaml:4:31: policies.a.ipAllow[1]: "::1/129" is not an IP address or CIDR block',
    'routes.yaml:4:42: policies.a.ipAllow[2]: "300.1.1.1" is not an IP address or CIDR block',
    'routes.yaml:5:16: policies.b.ipDeny: must NOT have fewer than 1 items',
    'routes.yaml:6:8: policies.c.ipBlock: unknown policy kind "ipBlock" (known: ipAllow, ipDeny, apiKey, basicAuth, jwt, rateLimit, forwardAuth, headers, redirect, cors, compress, mirror)',
    'routes.yaml:8:55: routes[0].policies[1]: unknown policy "nope" (defined: a, b, c)',
  ]);
});
