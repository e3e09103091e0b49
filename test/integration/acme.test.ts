/**
 * tls.acme against Debian's pebble (an RFC 8555 test CA): pebble's validation authority resolves the test's names
 * through dnsmasq to 127.0.0.1 and reaches the gateway on the ports its httpPort and tlsPort name.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { httpsFingerprint, sClient } from '../helpers/acme-clients.js';
import { waitFor } from '../helpers/capture-log.js';
import { createCertificateAuthority, type CertificateAuthority } from '../helpers/certificate-authority.js';
import { startDnsmasq, type Dnsmasq } from '../helpers/dnsmasq.js';
import { freePort } from '../helpers/free-port.js';
import { repeatUntil, spawnGateway, workersReady, type GatewayProcess } from '../helpers/gateway-process.js';
import { startPebble, type Pebble } from '../helpers/pebble.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

const NAMES = ['http.acme.test', 'alpn.acme.test', 'renew.acme.test', 'fail.acme.test', 'shared.acme.test', 'workers.acme.test', 'other.acme.test'];

let ca: CertificateAuthority;
let dns: Dnsmasq;
let up: RecordingUpstream;
t.before(async () => {
  ca = await createCertificateAuthority();
  dns = await startDnsmasq([], { hosts: `127.0.0.1 ${NAMES.join(' ')}\n` });
  up = await startRecordingUpstream();
});
t.teardown(async () => {
  await up.close();
  await dns.stop();
  await ca.remove();
});

interface Setup {
  readonly httpPort: number;
  readonly tlsPort: number;
  readonly pebble: Pebble;
  readonly storage: string;
}

/** Ports for the gateway's listeners, a pebble validating on them, and a storage directory of the test's own. */
async function setup(t: Test, name: string, options: { validityS?: number; httpPort?: number } = {}): Promise<Setup> {
  const httpPort = await freePort();
  const tlsPort = await freePort();
  const pebble = await startPebble(ca, { httpPort: options.httpPort ?? httpPort, tlsPort, dnsServer: dns.server, validityS: options.validityS });
  const storage = join(ca.dir, `storage-${name}`);
  t.teardown(async () => {
    await pebble.stop();
    await rm(storage, { recursive: true, force: true });
  });
  return { httpPort, tlsPort, pebble, storage };
}

function routesYaml(s: Setup, acme: string, extra = '', httpPort = s.httpPort, tlsPort = s.tlsPort): string {
  return `listen: 127.0.0.1:${httpPort}
admin: null
${extra}tls:
  listen: 127.0.0.1:${tlsPort}
  acme:
    directory: ${s.pebble.directory}
    email: ops@acme.test
    storage: ${s.storage}
    caFile: ${ca.caFile}
${acme.replace(/^/gm, '    ')}
services:
  svc: { discovery: { type: static, endpoints: ["${up.url}"] } }
routes:
  - { match: { path: / }, service: svc }
`;
}

const events = (gw: GatewayProcess, event: string) => gw.logs.filter((l) => l.event === event);
const issuedLine = (gw: GatewayProcess, from = 0) => gw.waitForLog((l) => l.event === 'acme-certificate-issued', 60_000, from);

function plainGet(port: number, host: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject);
  });
}

t.test('row 63: orders over HTTP-01 on the plain listener (redirectHttp on), serves the certificate, and a restart reuses it', async (t) => {
  const s = await setup(t, 'http');
  const yaml = routesYaml(s, 'domains: [http.acme.test]\nchallenges: [http-01]', '').replace('tls:\n', 'tls:\n  redirectHttp: true\n');
  const gw = await spawnGateway(yaml);
  t.teardown(() => gw.kill());
  const issued = await issuedLine(gw);
  t.same(issued.proved, { 'http.acme.test': 'http-01' }, 'proved over HTTP-01');
  const order = events(gw, 'acme-order-started')[0];
  t.equal(order?.reason, 'no certificate stored yet');
  t.equal(order?.worker, undefined);
  // Pebble's validation requests reached the plain listener and were answered before the redirect.
  const challenges = gw.logs.filter((l) => l.log === 'access' && String(l.path).startsWith('/.well-known/acme-challenge/'));
  t.ok(challenges.length > 0 && challenges.every((l) => l.status === 200), `the challenge requests were answered 200 (${challenges.length})`);

  await gw.waitForLog((l) => l.event === 'tls-certificates-loaded');
  const served = await sClient(s.tlsPort, 'http.acme.test');
  t.equal(served.cert?.fingerprint256, issued.fingerprint, 'openssl s_client -servername gets the issued certificate');
  t.match(served.cert?.issuer, /Pebble/, 'issued by pebble');
  t.match(served.cert?.subjectAltName, /DNS:http\.acme\.test/);
  t.equal((await httpsFingerprint(s.tlsPort, 'http.acme.test', '/x')).status, 200, 'an HTTPS request is served with it');

  // Under the challenge path with no such token pending: 404, not routed nor redirected; elsewhere the redirect holds.
  const unknown = await plainGet(s.httpPort, 'http.acme.test', '/.well-known/acme-challenge/nosuchtoken');
  t.equal(unknown.status, 404);
  t.equal(JSON.parse(unknown.body).error, 'GW_ERR_ACME_CHALLENGE_UNKNOWN');
  t.equal((await plainGet(s.httpPort, 'http.acme.test', '/.well-known/acme-challenge/../x')).status, 308, 'a path that normalizes elsewhere is redirected');
  t.equal((await plainGet(s.httpPort, 'http.acme.test', '/x')).status, 308);

  // A restart finds the stored certificate valid: it serves it, schedules the renewal, orders nothing.
  await gw.kill();
  const again = await spawnGateway(yaml);
  t.teardown(() => again.kill());
  const scheduled = await again.waitForLog((l) => l.event === 'acme-renewal-scheduled');
  t.equal(scheduled.validTo, issued.validTo);
  t.equal(events(again, 'acme-order-started').length, 0, 'no new order');
  t.equal(s.pebble.issued(), 1, 'pebble issued one certificate in all');
  t.equal((await sClient(s.tlsPort, 'http.acme.test')).cert?.fingerprint256, issued.fingerprint, 'the stored certificate is served after the restart');
});

t.test('row 64: orders over TLS-ALPN-01 on the TLS listener; clients that do not offer acme-tls/1 get the usual certificate', async (t) => {
  const s = await setup(t, 'alpn');
  const other = await ca.issue('other', ['other.acme.test']);
  const yaml = routesYaml(s, 'domains: [alpn.acme.test]\nchallenges: [tls-alpn-01]').replace('tls:\n', `tls:\n  certificates: [{ cert: ${other.cert}, key: ${other.key} }]\n`);
  const gw = await spawnGateway(yaml);
  t.teardown(() => gw.kill());
  const issued = await issuedLine(gw);
  t.same(issued.proved, { 'alpn.acme.test': 'tls-alpn-01' }, 'proved over TLS-ALPN-01');
  await gw.waitForLog((l) => l.event === 'tls-certificates-loaded');
  const usual = await sClient(s.tlsPort, 'alpn.acme.test', ['-alpn', 'h2,http/1.1']);
  t.equal(usual.cert?.fingerprint256, issued.fingerprint, 'a usual client of the name gets the issued certificate');
  t.equal(usual.alpn, 'h2');
  const otherCert = new X509Certificate(await readFile(other.cert));
  t.equal((await sClient(s.tlsPort, 'other.acme.test')).cert?.fingerprint256, otherCert.fingerprint256, 'the configured certificate is still served for its name');

  // A pending challenge (as the ordering process publishes it): only a client offering acme-tls/1 gets it.
  const challenge = await ca.issue('alpn-challenge', ['alpn.acme.test']);
  const dir = join(s.storage, 'challenges', 'tls-alpn-01');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'alpn.acme.test'), Buffer.concat([await readFile(challenge.key), await readFile(challenge.cert)]));
  const challengeFingerprint = new X509Certificate(await readFile(challenge.cert)).fingerprint256;
  const validator = await sClient(s.tlsPort, 'alpn.acme.test', ['-alpn', 'acme-tls/1']);
  t.equal(validator.cert?.fingerprint256, challengeFingerprint, 'acme-tls/1 with the name: the challenge certificate');
  t.equal(validator.alpn, 'acme-tls/1');
  const meanwhile = await sClient(s.tlsPort, 'alpn.acme.test', ['-alpn', 'h2,http/1.1']);
  t.equal(meanwhile.cert?.fingerprint256, issued.fingerprint, 'meanwhile a usual client still gets the issued certificate');
  t.equal((await httpsFingerprint(s.tlsPort, 'alpn.acme.test', '/x')).fingerprint, issued.fingerprint, 'and an HTTPS request is served as usual');
  // TLS 1.2 chooses the certificate before ALPN: refused rather than acme-tls/1 over the usual certificate.
  const tls12 = await sClient(s.tlsPort, 'alpn.acme.test', ['-alpn', 'acme-tls/1', '-tls1_2']);
  t.equal(tls12.alpn, null);
  t.match(tls12.out, /no application protocol/, 'TLS 1.2 with acme-tls/1: no_application_protocol alert');
  await rm(join(dir, 'alpn.acme.test'));
  const none = await sClient(s.tlsPort, 'alpn.acme.test', ['-alpn', 'acme-tls/1']);
  t.equal(none.cert, null, 'acme-tls/1 with no challenge pending: the handshake fails');
  t.equal((await sClient(s.tlsPort, 'other.acme.test', ['-alpn', 'acme-tls/1'])).cert, null, 'acme-tls/1 for a name that is not in domains fails too');
});

t.test('renews at two thirds of a short lifetime and serves the renewal at once; an open connection keeps working', async (t) => {
  // pebble's certificateValidityPeriod: 15 s, so the renewal falls 9.5-10 s after issuance.
  const s = await setup(t, 'renew', { validityS: 15 });
  const gw = await spawnGateway(routesYaml(s, 'domains: [renew.acme.test]', 'server: { keepAliveTimeoutMs: 120000 }\n'));
  t.teardown(() => gw.kill());
  const first = await issuedLine(gw);
  const scheduled = await gw.waitForLog((l) => l.event === 'acme-renewal-scheduled');
  const cert = await waitFor(async () => {
    const got = await sClient(s.tlsPort, 'renew.acme.test');
    return got.cert !== null && got.cert.fingerprint256 === first.fingerprint ? got.cert : undefined;
  }, 5000, 'the first certificate served');
  const lifetimeMs = cert.validToDate.getTime() - cert.validFromDate.getTime();
  const renewAt = Date.parse(String(scheduled.renewAt));
  const share = (renewAt - cert.validFromDate.getTime()) / lifetimeMs;
  t.ok(share > 0.63 && share <= 0.67, `renewal scheduled at ${share.toFixed(3)} of the lifetime (two thirds less up to a thirtieth)`);

  // An HTTP/2 connection opened on the first certificate.
  const session = http2.connect(`https://127.0.0.1:${s.tlsPort}`, { servername: 'renew.acme.test', rejectUnauthorized: false });
  t.teardown(() => session.destroy());
  const get = (path: string) => new Promise<number>((resolve, reject) => {
    const stream = session.request({ ':path': path, ':authority': 'renew.acme.test' });
    stream.on('response', (h) => { stream.resume(); stream.on('end', () => resolve(Number(h[':status']))); });
    stream.on('error', reject);
  });
  t.equal(await get('/before'), 200);
  const peer = (session.socket as unknown as { getPeerCertificate(): { fingerprint256: string } }).getPeerCertificate();
  t.equal(peer.fingerprint256, first.fingerprint);

  const second = await issuedLine(gw, gw.logs.indexOf(first) + 1);
  t.not(second.fingerprint, first.fingerprint, 'a new certificate');
  t.equal(events(gw, 'acme-order-started')[1]?.reason, 'renewal');
  const renewed = await waitFor(async () => ((await sClient(s.tlsPort, 'renew.acme.test')).cert?.fingerprint256 === second.fingerprint ? true : undefined), 5000, 'the renewal served');
  t.ok(renewed, 'new handshakes get the renewed certificate, no restart');
  t.equal(await get('/after'), 200, 'the connection opened before the renewal still serves requests');
  t.equal(session.closed, false);
});

t.test('a failed order is logged with the problem document and retried with backoff; the other certificates serve meanwhile', async (t) => {
  // pebble validates HTTP-01 on a port nobody listens on.
  const closedPort = await freePort();
  const s = await setup(t, 'fail', { httpPort: closedPort });
  const other = await ca.issue('other-fail', ['other.acme.test']);
  const yaml = routesYaml(s, 'domains: [fail.acme.test]\nchallenges: [http-01]\nretry: { initialMs: 1000, maxMs: 2000 }')
    .replace('tls:\n', `tls:\n  certificates: [{ cert: ${other.cert}, key: ${other.key} }]\n`);
  const gw = await spawnGateway(yaml);
  t.teardown(() => gw.kill());
  const failed = await gw.waitForLog((l) => l.event === 'acme-order-failed', 60_000);
  const problem = failed.problem as { type: string; detail: string; status: number };
  t.equal(problem.type, 'urn:ietf:params:acme:error:connection', 'the CA\'s problem document is logged');
  t.match(problem.detail, /fail\.acme\.test/);
  t.equal(failed.failures, 1);
  t.ok(Number(failed.retryInMs) >= 500 && Number(failed.retryInMs) <= 1000, `retried after ${String(failed.retryInMs)} ms`);
  const second = await gw.waitForLog((l) => l.event === 'acme-order-failed' && l.failures === 2, 60_000);
  t.ok(Number(second.retryInMs) >= 1000 && Number(second.retryInMs) <= 2000, 'the second wait doubles');
  t.equal(events(gw, 'acme-order-started').length >= 2, true, 'ordered again');
  // Meanwhile the configured certificate serves, its own name and (as the default) the ACME one's.
  const otherFingerprint = new X509Certificate(await readFile(other.cert)).fingerprint256;
  t.equal((await sClient(s.tlsPort, 'fail.acme.test')).cert?.fingerprint256, otherFingerprint);
  t.equal((await httpsFingerprint(s.tlsPort, 'other.acme.test', '/x')).status, 200);

  // SIGTERM while the retry waits: the renewal stops at once, the gateway drains and exits 0.
  gw.child.kill('SIGTERM');
  t.same(await gw.exited, { code: 0, signal: null });
  t.ok(gw.logs.some((l) => l.event === 'stopped'));
});

t.test('two gateways on one storage directory: one orders, the other serves what it stored (the order lock)', async (t) => {
  const s = await setup(t, 'shared');
  // A live process (this test) holds the lock: neither gateway orders while it does.
  await mkdir(s.storage, { recursive: true });
  const lock = join(s.storage, 'order.lock');
  await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() }));
  const acme = 'domains: [shared.acme.test]\nchallenges: [http-01]';
  const secondHttp = await freePort();
  const secondTls = await freePort();
  const [a, b] = await Promise.all([spawnGateway(routesYaml(s, acme)), spawnGateway(routesYaml(s, acme, '', secondHttp, secondTls))]);
  t.teardown(async () => { await a.kill(); await b.kill(); });
  await a.waitForLog((l) => l.event === 'acme-order-locked');
  await b.waitForLog((l) => l.event === 'acme-order-locked');
  t.equal(s.pebble.issued(), 0, 'no order while the lock is held');
  await rm(lock);
  const issued = await Promise.race([issuedLine(a), issuedLine(b)]);
  await waitFor(async () => ((await sClient(s.tlsPort, 'shared.acme.test')).cert?.fingerprint256 === issued.fingerprint
    && (await sClient(secondTls, 'shared.acme.test')).cert?.fingerprint256 === issued.fingerprint), 10_000, 'both gateways serve it');
  await a.waitForLog((l) => l.event === 'acme-renewal-scheduled');
  await b.waitForLog((l) => l.event === 'acme-renewal-scheduled');
  t.equal(events(a, 'acme-order-started').length + events(b, 'acme-order-started').length, 1, 'one order between them');
  t.equal(s.pebble.issued(), 1);
});

t.test('--workers 2: the primary orders; every worker serves the certificate and answers HTTP-01', async (t) => {
  const s = await setup(t, 'workers');
  const gw = await spawnGateway(routesYaml(s, 'domains: [workers.acme.test]\nchallenges: [http-01]'), ['--workers', '2']);
  t.teardown(() => gw.kill());
  await workersReady(gw, 2);
  const issued = await issuedLine(gw);
  t.equal(issued.worker, undefined, 'ordered by the primary');
  t.equal(gw.logs.filter((l) => l.event === 'acme-order-started').length, 1, 'one order for the cluster');
  await waitFor(() => new Set(gw.logs.filter((l) => l.event === 'tls-certificates-loaded').map((l) => l.worker)).size === 2, 10_000, 'both workers loaded it');
  const fingerprints = new Set<string>();
  const workersOf = (path: string) => new Set(gw.logs.filter((l) => l.log === 'access' && l.path === path).map((l) => l.worker));
  await repeatUntil(async () => { fingerprints.add((await httpsFingerprint(s.tlsPort, 'workers.acme.test', '/https')).fingerprint); }, () => workersOf('/https').size === 2, 60);
  t.same([...fingerprints], [issued.fingerprint], 'both workers serve the issued certificate');

  // A challenge the primary publishes is answered by whichever worker the request reaches.
  const token = 'tokenFromThePrimary_-1';
  await writeFile(join(s.storage, 'challenges', 'http-01', token), 'key-authorization').catch(async () => {
    await mkdir(join(s.storage, 'challenges', 'http-01'), { recursive: true });
    await writeFile(join(s.storage, 'challenges', 'http-01', token), 'key-authorization');
  });
  const path = `/.well-known/acme-challenge/${token}`;
  const bodies = new Set<string>();
  await repeatUntil(async () => { bodies.add((await plainGet(s.httpPort, 'workers.acme.test', path)).body); }, () => workersOf(path).size === 2, 60);
  t.same([...bodies], ['key-authorization'], 'both workers answered it');
});
