import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { createCertificateAuthority, type CertificateAuthority } from '../helpers/certificate-authority.js';
import { routesYaml, startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/test-certificates.js';
import { webSocketHandshake } from '../helpers/websocket.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

let certs: TestCertificates;
let otherCa: CertificateAuthority;
const file = (name: keyof TestCertificates['files']) => join(certs.dir, certs.files[name]);

t.before(async () => {
  certs = await makeTestCertificates();
  otherCa = await createCertificateAuthority();
});
t.teardown(async () => { await certs.remove(); await otherCa.remove(); });

interface MtlsUpstream { readonly url: string; readonly clients: (string | null)[] }

/** An HTTPS upstream (certificate for 127.0.0.1 and localhost) that requires a client certificate signed by the test CA. */
async function startMtlsUpstream(t: Test): Promise<MtlsUpstream> {
  const [key, cert, ca] = await Promise.all([certs.read('serverKey'), certs.read('serverCert'), certs.read('ca')]);
  const clients: (string | null)[] = [];
  const server = https.createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    clients.push(peer.subject ? String(peer.subject.CN) : null);
    res.end(`hello ${String(peer.subject?.CN)}`);
  });
  // A WebSocket handshake is answered 101 with the client certificate's name, and the connection closed.
  server.on('upgrade', (_req, socket: TLSSocket) => {
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nx-client: ${String(socket.getPeerCertificate().subject?.CN)}\r\n\r\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, clients };
}

function serviceTls(fields: string): string {
  return `    retry: { attempts: 0 }\n    circuitBreaker: { enabled: false }\n    tls: { ${fields} }\n`;
}

async function get(gw: GatewayUnderTest): Promise<{ status: number; body: string; requestId: string | null }> {
  const res = await fetch(`${gw.url}/x`);
  return { status: res.status, body: await res.text(), requestId: res.headers.get('x-request-id') };
}

function assertTlsError(t: Test, r: { status: number; body: string; requestId: string | null }): void {
  t.equal(r.status, 502, 'answers 502');
  const body = JSON.parse(r.body) as { error: string; request_id: string };
  t.equal(body.error, 'GW_ERR_UPSTREAM_TLS', 'with GW_ERR_UPSTREAM_TLS');
  t.equal(body.request_id, r.requestId, 'and the request id of the header');
}

t.test('mTLS: the client certificate and the CA file get through to an upstream that requires a client certificate', async (t) => {
  const up = await startMtlsUpstream(t);
  const gw = await startGateway(routesYaml([up.url], undefined,
    serviceTls(`caFile: ${file('ca')}, certFile: ${file('clientCert')}, keyFile: ${file('clientKey')}, serverName: localhost`)));
  t.teardown(() => gw.close());
  const r = await get(gw);
  t.equal(r.status, 200);
  t.equal(r.body, 'hello gantry', 'the upstream saw the gateway\'s client certificate');
});

t.test('row 58: without the client certificate, with another CA, or for another name: 502 GW_ERR_UPSTREAM_TLS', async (t) => {
  const up = await startMtlsUpstream(t);
  const cases = {
    'no client certificate': `caFile: ${file('ca')}, serverName: localhost`,
    'a CA that did not sign the upstream': `caFile: ${otherCa.caFile}, certFile: ${file('clientCert')}, keyFile: ${file('clientKey')}, serverName: localhost`,
    // The Host sent upstream is a name the certificate covers: serverName, not the Host, is what is verified.
    'a serverName the certificate does not cover': `caFile: ${file('ca')}, certFile: ${file('clientCert')}, keyFile: ${file('clientKey')}, serverName: billing.internal`,
  };
  for (const [name, fields] of Object.entries(cases)) {
    const gw = await startGateway(routesYaml([up.url], undefined, `    hostHeader: localhost\n${serviceTls(fields)}`));
    assertTlsError(t, await get(gw));
    const line = gw.logs.find((l) => l.log === 'access');
    t.equal(line?.err, 'GW_ERR_UPSTREAM_TLS', `${name}: the access line has the code`);
    await gw.close();
  }
  t.equal(up.clients.length, 0, 'no request reached the upstream');
});

t.test('active health checks reach the endpoint with the service\'s CA file and client certificate', async (t) => {
  const up = await startMtlsUpstream(t);
  const gw = await startGateway(routesYaml([up.url], undefined,
    `    healthCheck: { path: /healthz, intervalMs: 100 }\n${serviceTls(`caFile: ${file('ca')}, certFile: ${file('clientCert')}, keyFile: ${file('clientKey')}, serverName: localhost`)}`));
  t.teardown(() => gw.close());
  await waitFor(() => up.clients.length >= 2, 10_000, 'two health probes through mTLS');
  t.equal(up.clients[0], 'gantry', 'the probe presented the client certificate');
});

t.test('a WebSocket handshake is tunnelled to the endpoint with the service\'s TLS settings', async (t) => {
  const up = await startMtlsUpstream(t);
  const gw = await startGateway(routesYaml([up.url], '  - match: { path: / }\n    service: svc\n    websocket: true\n',
    serviceTls(`caFile: ${file('ca')}, certFile: ${file('clientCert')}, keyFile: ${file('clientKey')}, serverName: localhost`)));
  t.teardown(() => gw.close());
  const answer = await webSocketHandshake(gw.port, '/ws');
  t.equal(answer.status, 101);
  t.equal(answer.headers['x-client'], 'gantry', 'the upstream saw the client certificate');
  if ('socket' in answer) answer.socket.destroy();
});

t.test('TLS failures count against the endpoint\'s breaker, as a refused connection does', async (t) => {
  const up = await startMtlsUpstream(t);
  const gw = await startGateway(routesYaml([up.url], undefined,
    `    retry: { attempts: 0 }\n    circuitBreaker: { consecutiveFailures: 2, halfOpenAfterMs: 60000 }\n    tls: { caFile: ${file('ca')}, serverName: localhost }\n`));
  t.teardown(() => gw.close());
  assertTlsError(t, await get(gw));
  assertTlsError(t, await get(gw));
  const open = await get(gw);
  t.equal(open.status, 503, 'the circuit is open after two handshake failures');
  t.equal((JSON.parse(open.body) as { error: string }).error, 'GW_ERR_NO_ENDPOINT');
});

t.test('a reload that changes caFile (and adds the client certificate) takes effect at the swap', async (t) => {
  const up = await startMtlsUpstream(t);
  const withCa = (ca: string) => routesYaml([up.url], undefined,
    serviceTls(`caFile: ${ca}, certFile: ${file('clientCert')}, keyFile: ${file('clientKey')}, serverName: localhost`));
  const gw = await startGateway(withCa(otherCa.caFile));
  t.teardown(() => gw.close());
  assertTlsError(t, await get(gw));
  await gw.rewrite(withCa(file('ca')));
  const outcome = await gw.gateway.reload();
  t.equal(outcome.result, 'applied');
  t.equal((await get(gw)).status, 200, 'the new CA verifies the upstream');
  // The same path, new content: the config's hash covers the CA file, so a SIGHUP after a rotation is a reload.
  const rotated = join(certs.dir, 'rotating-ca.pem');
  await copyFile(file('ca'), rotated);
  await gw.rewrite(withCa(rotated));
  t.equal((await gw.gateway.reload()).result, 'applied');
  await copyFile(otherCa.caFile, rotated);
  t.equal((await gw.gateway.reload()).result, 'applied', 'only the file changed: still a reload, not "unchanged"');
  assertTlsError(t, await get(gw));
});

t.test('row 57: gantry validate refuses unreadable or mismatched TLS files at file:line:col; a reload with them is refused', async (t) => {
  const dir = certs.dir;
  const notPem = join(dir, 'not-pem.txt');
  await writeFile(notPem, 'hello\n');
  const text = `listen: 127.0.0.1:0
admin: null
services:
  a:
    discovery: { type: static, endpoints: ["https://127.0.0.1:9"] }
    tls: { caFile: missing-ca.pem }
  b:
    discovery: { type: static, endpoints: ["https://127.0.0.1:9"] }
    tls: { caFile: not-pem.txt, certFile: ${certs.files.clientCert}, keyFile: ${certs.files.serverKey} }
routes:
  - { match: { path: /a }, service: a }
  - { match: { path: /b }, service: b }
`;
  const validate = async (name: string, yaml: string) => {
    const routes = join(dir, name);
    await writeFile(routes, yaml);
    return run(process.execPath, [CLI, 'validate', '-c', routes]).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
  };
  const out = await validate('bad-upstream-tls.yaml', text);
  t.equal(out.code, 1, 'validate fails');
  t.match(out.stderr, /bad-upstream-tls\.yaml:6:\d+: services\.a\.tls\.caFile: cannot read .*missing-ca\.pem/, 'an unreadable CA file, relative to the routes file');
  t.match(out.stderr, /bad-upstream-tls\.yaml:9:\d+: services\.b\.tls\.caFile: .*not-pem\.txt holds no PEM certificate/, 'a CA file that is not PEM');
  t.match(out.stderr, /bad-upstream-tls\.yaml:9:\d+: services\.b\.tls\.keyFile: .*server-key\.pem is not the key of .*client\.pem/, 'a key that is not the certificate\'s');
  const half = await validate('half-pair.yaml', text.replace(`caFile: not-pem.txt, certFile: ${certs.files.clientCert}, keyFile: ${certs.files.serverKey}`, `certFile: ${certs.files.clientCert}`));
  t.match(half.stderr, /half-pair\.yaml:9:\d+: services\.b\.tls: must have property keyFile when property certFile is present/, 'a certificate without its key');

  const up = await startMtlsUpstream(t);
  const good = routesYaml([up.url], undefined, serviceTls(`caFile: ${file('ca')}, certFile: ${file('clientCert')}, keyFile: ${file('clientKey')}, serverName: localhost`));
  const gw = await startGateway(good);
  t.teardown(() => gw.close());
  await gw.rewrite(good.replace(`keyFile: ${file('clientKey')}`, `keyFile: ${file('serverKey')}`));
  const refused = await gw.gateway.reload();
  t.equal(refused.result, 'refused', 'a reload with a mismatched key is refused');
  t.match(refused.result === 'refused' ? refused.message : '', /routes\.yaml:\d+:\d+: services\.svc\.tls\.keyFile: .* is not the key of /);
  t.equal((await get(gw)).status, 200, 'the serving config keeps its client certificate');
});
