/**
 * jwt (docs/policies.md): tokens verified with jose against a real JWKS server on 127.0.0.1 that rotates its keys;
 * forged tokens (alg none, HS256 keyed with the RSA public key, expired, not yet valid, wrong audience or issuer, a
 * huge token) refused with 401 and RFC 6750's challenge; claims to headers, client copies removed; the token not
 * forwarded; an unknown kid refetches the set once per cooldown.
 */
import http from 'node:http';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { configProblems } from '../helpers/config-problems.js';
import { listenOnLoopback } from '../helpers/listen-loopback.js';
import { metricValue, policyYaml, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());

interface Key { kid: string; priv: CryptoKey; pub: CryptoKey; jwk: JWK }
async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, priv: privateKey, pub: publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** A JWKS server serving `served` keys and counting its fetches. */
let served: Key[] = [];
let fetches = 0;
const jwks = await listenOnLoopback(http.createServer((_req, res) => {
  fetches++;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ keys: served.map((k) => k.jwk) }));
}));
t.teardown(() => jwks.close());

const ISS = 'https://idp.test/';
const nowS = () => Math.floor(Date.now() / 1000);
function token(key: Key, claims: Record<string, unknown> = {}, opts: { exp?: number; nbf?: number; aud?: string; iss?: string; kid?: string } = {}): Promise<string> {
  const jwt = new SignJWT({ sub: 'user-7', role: 'admin', ...claims }).setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? key.kid })
    .setIssuer(opts.iss ?? ISS).setAudience(opts.aud ?? 'api').setIssuedAt().setExpirationTime(opts.exp ?? nowS() + 300);
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(key.priv);
}
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

const k1 = await makeKey('k1');
const k2 = await makeKey('k2');
served = [k1];
const POLICIES = `  users: { jwt: { jwksUrl: "${jwks.url}/jwks.json", issuer: "${ISS}", audience: api, algorithms: [RS256, ES256],
                  claimsToHeaders: { sub: x-user-id, role: X-User-Role }, clockSkewS: 5, jwksCooldownMs: 300 } }`;
const g = await startPolicyGateway(policyYaml(upstream.url, POLICIES, '  - { name: api, match: { path: /api }, service: svc, policies: [users] }\n'));
t.teardown(() => g.close());
const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });

t.test('a valid token passes: claims become headers (client copies gone), the token is not forwarded, sub is the consumer', async (t) => {
  const r = await send(`${g.url4}/api`, { ...bearer(await token(k1)), 'x-user-id': 'spoofed', 'x-user-role': 'root' });
  t.equal(r.status, 200);
  const h = upstream.requests.at(-1)?.headers ?? {};
  t.equal(h['x-user-id'], 'user-7');
  t.equal(h['x-user-role'], 'admin');
  t.equal(h.authorization, undefined, 'the token is not forwarded');
  const line = await waitFor(() => g.logs.find((l) => l.log === 'access' && l.reqId === r.headers['x-request-id']));
  t.equal(line.consumer, 'user-7');
  t.equal(fetches, 1, 'one JWKS fetch');

  t.equal((await send(`${g.url4}/api`, { ...bearer(await token(k1, { role: undefined })), 'x-user-role': 'root' })).status, 200);
  t.equal(upstream.requests.at(-1)?.headers['x-user-role'], undefined, 'a claim the token lacks: the client\'s copy is still removed');

  const noToken = await send(`${g.url4}/api`, { 'x-user-id': 'spoofed' });
  t.equal(noToken.status, 401);
  t.equal(noToken.headers['www-authenticate'], 'Bearer realm="gantry"');
});

t.test('forged and out-of-date tokens are refused with 401 and never reach the upstream', async (t) => {
  const before = upstream.requests.length;
  const header = (alg: string) => b64({ alg, kid: 'k1', typ: 'JWT' });
  const payload = b64({ sub: 'mallory', iss: ISS, aud: 'api', exp: nowS() + 300 });
  const hmacWithPublicKey = await new SignJWT({ sub: 'mallory' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer(ISS).setAudience('api')
    .setExpirationTime(nowS() + 300).sign(new TextEncoder().encode(await exportSPKI(k1.pub)));
  const cases: [string, string, string][] = [
    ['alg none', `${header('none')}.${payload}.`, 'algorithm'],
    ['HS256 keyed with the RSA public key', hmacWithPublicKey, 'algorithm'],
    ['expired past the skew', await token(k1, {}, { exp: nowS() - 60 }), 'expired'],
    ['not yet valid', await token(k1, {}, { nbf: nowS() + 120 }), 'not-yet-valid'],
    ['wrong audience', await token(k1, {}, { aud: 'other' }), 'audience'],
    ['wrong issuer', await token(k1, {}, { iss: 'https://evil.test/' }), 'issuer'],
    ['a signature of another key under k1', await token(k2, {}, { kid: 'k1' }), 'signature'],
    ['not a JWT', 'abc.def', 'invalid'],
    ['a huge token', `${header('RS256')}.${'A'.repeat(10_000)}.sig`, 'too-large'],
  ];
  for (const [name, tok, reason] of cases) {
    const r = await send(`${g.url4}/api`, bearer(tok));
    t.equal(r.status, 401, name);
    t.equal(r.json().error, 'GW_ERR_UNAUTHORIZED', name);
    t.equal(r.json().request_id, r.headers['x-request-id'], `${name}: request id`);
    t.match(String(r.headers['www-authenticate']), /^Bearer realm="gantry", error="invalid_token", error_description="[^"]+"$/, name);
    t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'users', reason }) >= 1, true, `${name}: reason ${reason}`);
  }
  t.equal(upstream.requests.length, before, 'no forged token reached the upstream');
  t.equal((await send(`${g.url4}/api`, bearer(await token(k1, {}, { exp: nowS() - 2 })))).status, 200, 'expired within the skew passes');
});

t.test('rotation: the new kid is fetched once; after it the old kid is refused; unknown kids refetch at most once per cooldown', async (t) => {
  served = [k2];
  const oldToken = await token(k1);
  t.equal((await send(`${g.url4}/api`, bearer(oldToken))).status, 200, 'before a refetch the cached set still has k1');
  const started = Date.now();
  await waitFor(() => Date.now() - started > 350, 2000, 'the cooldown since the last fetch');
  const before = fetches;
  const fetchedAt = Date.now();
  const answers = await Promise.all(Array.from({ length: 5 }, async () => send(`${g.url4}/api`, bearer(await token(k2)))));
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200], 'new-kid tokens pass');
  t.equal(fetches - before, 1, 'five new-kid requests at once: one fetch');
  t.equal((await send(`${g.url4}/api`, bearer(await token(k2)))).status, 200);
  t.equal(fetches - before, 1, 'a known kid: no fetch');
  const old = await send(`${g.url4}/api`, bearer(oldToken));
  t.equal(old.status, 401, 'the rotated-out kid is refused');
  t.match(String(old.headers['www-authenticate']), /no key matches/);
  for (let i = 0; i < 5; i++) await send(`${g.url4}/api`, bearer(await token(k2, {}, { kid: `random-${i}` })));
  // At most one fetch per 300 ms cooldown since the first: on a slow machine these requests can outlast one.
  const allowed = 1 + Math.floor((Date.now() - fetchedAt) / 300);
  t.ok(fetches - before <= allowed, `unknown kids fetch at most once per cooldown: ${fetches - before} fetches, ${allowed} allowed`);
});

t.test('gantry validate refuses none, HS algorithms and a bad JWKS URL at file:line:col', async (t) => {
  t.same(configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  j: { jwt: { jwksUrl: "ftp://idp/jwks", algorithms: [RS256, none, HS256] } }
routes:
  - { match: { path: / }, service: svc, policies: [j] }
`), [
    'routes.yaml:4:24: policies.j.jwt.jwksUrl: "ftp://idp/jwks" is not an http:// or https:// URL',
    'routes.yaml:4:62: policies.j.jwt.algorithms[1]: "none" is not allowed: only asymmetric algorithms (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519); never none, never HS* with a JWKS\'s public keys',
    'routes.yaml:4:68: policies.j.jwt.algorithms[2]: "HS256" is not allowed: only asymmetric algorithms (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519); never none, never HS* with a JWKS\'s public keys',
  ]);
});
