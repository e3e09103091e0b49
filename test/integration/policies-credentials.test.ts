/**
 * apiKey and basicAuth (docs/policies.md): keys stored as SHA-256 hashes and users as bcrypt hashes made by
 * `htpasswd -B`, both files re-read on reload; refusals are 401 JSON with the request id and a WWW-Authenticate
 * challenge and never reach the upstream; the credential is not forwarded; the consumer is in the access log; which
 * part of a credential failed does not change the work done (counted, not timed).
 */
import { execFileSync } from 'node:child_process';
import crypto, { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import t, { type Test } from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { configProblems } from '../helpers/config-problems.js';
import { metricValue, policyYaml, send, startPolicyGateway, type Answer } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { startWebSocketEcho, webSocketHandshake } from '../helpers/websocket.js';

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** An htpasswd line made by `htpasswd -B` when apache2-utils is installed, else by bcryptjs (the same format). */
function htpasswdLine(user: string, password: string): string {
  try {
    return execFileSync('htpasswd', ['-nbB', user, password], { encoding: 'utf8' }).trim();
  } catch {
    return `${user}:${bcrypt.hashSync(password, 5)}`;
  }
}
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function assertRefused(t: Test, r: Answer, reasonChallenge: RegExp): void {
  t.equal(r.status, 401);
  const body = r.json();
  t.equal(body.error, 'GW_ERR_UNAUTHORIZED');
  t.equal(body.request_id, r.headers['x-request-id']);
  t.match(String(r.headers['www-authenticate']), reasonChallenge);
}

const POLICIES = `  partners: { apiKey: { header: X-Api-Key, keysFile: keys.txt } }
  ops: { basicAuth: { usersFile: users.htpasswd, realm: ops } }`;
const ROUTES = `  - { name: keyed, match: { path: /keyed }, service: svc, policies: [partners] }
  - { name: ops, match: { path: /ops }, service: svc, policies: [ops] }
`;

t.test('API keys: hashed in the file, checked, not forwarded, the consumer logged; the file re-read on reload', async (t) => {
  const keys = `# partner keys\n${sha256('k-alpha')} partner-a\n${sha256('k-beta')} partner-b\n`;
  const g = await startPolicyGateway(policyYaml(upstream.url, POLICIES, ROUTES), { 'keys.txt': keys, 'users.htpasswd': htpasswdLine('alice', 'pw') });
  t.teardown(() => g.close());
  const before = upstream.requests.length;
  assertRefused(t, await send(`${g.url4}/keyed`), /^ApiKey header="x-api-key"$/);
  assertRefused(t, await send(`${g.url4}/keyed`, { 'x-api-key': 'k-gamma' }), /ApiKey/);
  assertRefused(t, await send(`${g.url4}/keyed`, { 'x-api-key': sha256('k-alpha') }), /ApiKey/);   // the hash is not the key
  t.equal(upstream.requests.length, before, 'no refused request reached the upstream');

  const ok = await send(`${g.url4}/keyed`, { 'x-api-key': 'k-beta', 'x-other': 'kept' });
  t.equal(ok.status, 200);
  const seen = upstream.requests.at(-1);
  t.equal(seen?.headers['x-api-key'], undefined, 'the key is not forwarded');
  t.equal(seen?.headers['x-other'], 'kept');
  const line = await waitFor(() => g.logs.find((l) => l.log === 'access' && l.reqId === ok.headers['x-request-id']));
  t.equal(line.consumer, 'partner-b', 'the consumer is in the access line');
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'partners', reason: 'missing' }), 1);
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'partners', reason: 'invalid' }), 2);

  await g.write('keys.txt', `${sha256('k-alpha')} partner-a\n`);
  t.equal(await g.reload(), 'applied', 'a changed keys file is a change');
  assertRefused(t, await send(`${g.url4}/keyed`, { 'x-api-key': 'k-beta' }), /ApiKey/);
  t.equal((await send(`${g.url4}/keyed`, { 'x-api-key': 'k-alpha' })).status, 200);
});

t.test('basic auth: htpasswd -B users; wrong user and wrong password alike refused; the cache outlives no reload', async (t) => {
  const users = `${htpasswdLine('alice', 's3cret')}\n${htpasswdLine('bob', 'hunter2')}\n`;
  const g = await startPolicyGateway(policyYaml(upstream.url, POLICIES, ROUTES), { 'keys.txt': '', 'users.htpasswd': users });
  t.teardown(() => g.close());
  const before = upstream.requests.length;
  assertRefused(t, await send(`${g.url4}/ops`), /^Basic realm="ops", charset="UTF-8"$/);
  assertRefused(t, await send(`${g.url4}/ops`, { authorization: basic('alice', 'wrong') }), /^Basic realm="ops"/);
  assertRefused(t, await send(`${g.url4}/ops`, { authorization: basic('mallory', 's3cret') }), /^Basic/);
  assertRefused(t, await send(`${g.url4}/ops`, { authorization: 'Bearer x' }), /^Basic/);
  t.equal(upstream.requests.length, before, 'no refused request reached the upstream');

  for (let i = 0; i < 3; i++) {
    const ok = await send(`${g.url4}/ops`, { authorization: basic('alice', 's3cret') });
    t.equal(ok.status, 200, `alice, request ${i + 1}`);
    t.equal(upstream.requests.at(-1)?.headers.authorization, undefined, 'Authorization is not forwarded');
  }
  assertRefused(t, await send(`${g.url4}/ops`, { authorization: basic('alice', 's3cret!') }), /^Basic/);   // a cached user, another password
  const line = await waitFor(() => g.logs.findLast((l) => l.log === 'access' && l.status === 200));
  t.equal(line.consumer, 'alice');

  await g.write('users.htpasswd', htpasswdLine('bob', 'hunter2'));
  t.equal(await g.reload(), 'applied');
  assertRefused(t, await send(`${g.url4}/ops`, { authorization: basic('alice', 's3cret') }), /^Basic/);
  t.equal((await send(`${g.url4}/ops`, { authorization: basic('bob', 'hunter2') })).status, 200);
});

t.test('timing tells nothing: unknown user and wrong password run one bcrypt comparison of one cost; unknown and wrong keys one hash and one timingSafeEqual', async (t) => {
  // Counted through the seams the policies call at request time: bcryptjs's exported object, node:crypto's exports.
  const compared: string[] = [];
  const compare = bcrypt.compare;
  bcrypt.compare = ((password: string, hash: string) => { compared.push(hash); return compare(password, hash); }) as typeof bcrypt.compare;
  const calls = { sha256: 0, equal: 0 };
  const { createHash: realCreateHash, timingSafeEqual: realEqual } = crypto;
  crypto.createHash = ((algorithm: string, options?: crypto.HashOptions) => {
    if (algorithm === 'sha256') calls.sha256++;
    return realCreateHash(algorithm, options);
  }) as typeof crypto.createHash;
  crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => { calls.equal++; return realEqual(a, b); }) as typeof crypto.timingSafeEqual;
  syncBuiltinESMExports();
  t.teardown(() => {
    bcrypt.compare = compare;
    crypto.createHash = realCreateHash;
    crypto.timingSafeEqual = realEqual;
    syncBuiltinESMExports();
  });

  // A stored hash sharing its first bytes with the SHA-256 of 'near-miss': a wrong key that finds a near neighbour.
  const nearMiss = Buffer.from(sha256('near-miss'), 'hex');
  nearMiss[31] = (nearMiss[31] as number) ^ 1;
  const keys = `${sha256('k-alpha')} partner-a\n${nearMiss.toString('hex')} partner-n\n`;
  const users = `alice:${bcrypt.hashSync('s3cret', 4)}\nbob:${bcrypt.hashSync('hunter2', 4)}\n`;
  const g = await startPolicyGateway(policyYaml(upstream.url, POLICIES, ROUTES), { 'keys.txt': keys, 'users.htpasswd': users });
  t.teardown(() => g.close());

  const basicCalls = async (authorization: string) => {
    compared.length = 0;
    assertRefused(t, await send(`${g.url4}/ops`, { authorization }), /^Basic/);
    return compared.map((hash) => bcrypt.getRounds(hash));
  };
  t.same(await basicCalls(basic('mallory', 'x')), [4], 'unknown user: one comparison, at the file\'s cost');
  t.same(await basicCalls(basic('alice', 'x')), [4], 'wrong password: one comparison, at the same cost');
  t.same(await basicCalls(`Basic ${Buffer.from('no-colon').toString('base64')}`), [4], 'no password part: the same');

  const keyCalls = async (key: string) => {
    calls.sha256 = 0;
    calls.equal = 0;
    assertRefused(t, await send(`${g.url4}/keyed`, { 'x-api-key': key }), /ApiKey/);
    return { ...calls };
  };
  t.same(await keyCalls('k-unknown'), { sha256: 1, equal: 1 }, 'unknown key: one hash, one timingSafeEqual');
  t.same(await keyCalls('near-miss'), { sha256: 1, equal: 1 }, 'a wrong key beside a stored one: the same');
  calls.equal = 0;
  t.equal((await send(`${g.url4}/keyed`, { 'x-api-key': 'k-alpha' })).status, 200);
  t.equal(calls.equal, 1, 'a right key: the same one comparison');
});

t.test('a users file mixing bcrypt costs is refused: an unknown user would take another time than a known one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-users-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'users'), `alice:${bcrypt.hashSync('a', 4)}\nbob:${bcrypt.hashSync('b', 5)}\n`);
  t.same(configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  u: { basicAuth: { usersFile: ${join(dir, 'users')} } }
routes:
  - { match: { path: / }, service: svc }
`), [`routes.yaml:4:32: policies.u.basicAuth.usersFile: ${join(dir, 'users')} line 2: bcrypt cost 5 differs from line 1's (4); hash every user with one cost (htpasswd -B -C 4)`]);
});

t.test('gantry validate: an unreadable file and malformed lines, at file:line:col', async (t) => {
  const problems = configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  k: { apiKey: { keysFile: /nonexistent/keys.txt } }
  u: { basicAuth: { usersFile: /nonexistent/htpasswd } }
  h: { apiKey: { header: "x api", keysFile: k } }
routes:
  - { match: { path: / }, service: svc, policies: [k, u] }
`);
  t.equal(problems.length, 3);
  t.match(problems[0], /^routes\.yaml:4:28: policies\.k\.apiKey\.keysFile: cannot read "\/nonexistent\/keys\.txt": ENOENT/);
  t.match(problems[1], /^routes\.yaml:5:32: policies\.u\.basicAuth\.usersFile: cannot read/);
  t.match(problems[2], /^routes\.yaml:6:26: policies\.h\.apiKey\.header: must be a header name/);

  const dir = mkdtempSync(join(tmpdir(), 'gantry-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'keys.txt'), `${sha256('a')} one\nnot-a-hash two\n${sha256('a')} three\n`);
  writeFileSync(join(dir, 'users'), 'alice:$apr1$plain$md5notbcrypt\n');
  t.same(configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  k: { apiKey: { keysFile: ${join(dir, 'keys.txt')} } }
  u: { basicAuth: { usersFile: ${join(dir, 'users')} } }
routes:
  - { match: { path: / }, service: svc }
`), [
    `routes.yaml:4:28: policies.k.apiKey.keysFile: ${join(dir, 'keys.txt')} line 2: expected "<sha256 hex of the key> <consumer>"`,
    `routes.yaml:4:28: policies.k.apiKey.keysFile: ${join(dir, 'keys.txt')} line 3: the same key hash is listed twice`,
    `routes.yaml:5:32: policies.u.basicAuth.usersFile: ${join(dir, 'users')} line 1: expected "user:<bcrypt hash>" (htpasswd -B)`,
  ]);
});

t.test('a WebSocket route\'s policies guard its upgrades: refused without the key (401 on the socket), tunnelled with it, the key not forwarded', async (t) => {
  const echo = await startWebSocketEcho();
  t.teardown(() => echo.close());
  const keys = `${sha256('k-alpha')} partner-a\n`;
  const g = await startPolicyGateway(policyYaml(`http://127.0.0.1:${echo.port}`, POLICIES,
    '  - { name: live, match: { path: /live }, service: svc, websocket: true, policies: [partners] }\n'), { 'keys.txt': keys, 'users.htpasswd': htpasswdLine('alice', 'pw') });
  t.teardown(() => g.close());
  const port = Number(new URL(g.url4).port);

  const refused = await webSocketHandshake(port, '/live');
  t.equal(refused.status, 401, 'no key: refused before the upstream');
  t.match(String(refused.headers['www-authenticate']), /^ApiKey/);
  t.equal(JSON.parse('body' in refused ? refused.body : '{}').request_id, refused.headers['x-request-id'], 'JSON with the request id');
  t.equal((await webSocketHandshake(port, '/live', { 'x-api-key': 'k-gamma' })).status, 401, 'a wrong key: refused');
  t.equal(echo.upgrades.length, 0, 'no refused upgrade reached the upstream');

  const ok = await webSocketHandshake(port, '/live', { 'x-api-key': 'k-alpha' });
  t.equal(ok.status, 101, 'the key: tunnelled');
  if ('socket' in ok) ok.socket.destroy();
  t.equal(echo.upgrades.length, 1);
  t.equal(echo.upgrades[0]?.['x-api-key'], undefined, 'the key is not forwarded');
  const line = await waitFor(() => g.logs.find((l) => l.msg === 'upgrade' && l.route === 'live'), 5000, 'the upgrade line');
  t.equal(line.consumer, 'partner-a', 'the consumer in the upgrade line');
});
