import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { promisify } from 'node:util';
import t from 'tap';
import { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate } from '../helpers/certificate-authority.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { decodeFrame, encodeFrame, startWebSocketEcho } from '../helpers/websocket.js';

const run = promisify(execFile);

let ca: CertificateAuthority;
let cert: IssuedCertificate;
t.before(async () => {
  ca = await createCertificateAuthority();
  cert = await ca.issue('edge', ['edge.test']);
});
t.teardown(() => ca.remove());

function routes(upstream: string, tlsExtra = '', serverExtra = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug }
server: { trustedProxies: ["10.9.9.9"]${serverExtra} }
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${cert.cert}, key: ${cert.key} }]
${tlsExtra}services:
  svc: { discovery: { type: static, endpoints: ["${upstream}"] } }
routes:
  - { match: { path: /ws }, service: svc, websocket: true }
  - { match: { path: / }, service: svc }
`;
}

interface CurlAnswer { status: number; head: string; headers: Record<string, string>; body: string }

/** One request with the curl CLI: `https` to the TLS port (certificate not verified: -k), or plain HTTP. */
async function curl(url: string, port: number, extra: string[] = []): Promise<CurlAnswer> {
  const host = new URL(url).hostname;
  const { stdout } = await run('curl', ['-sk', '-i', '--max-time', '10', '--resolve', `${host}:${port}:127.0.0.1`, ...extra, url]);
  const end = stdout.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = stdout.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const at = l.indexOf(':');
    headers[l.slice(0, at).toLowerCase()] = l.slice(at + 1).trim();
  }
  return { status: Number(statusLine?.split(' ')[1]), head: stdout.slice(0, end), headers, body: stdout.slice(end + 4) };
}

t.test('redirectHttp: plain requests get 308 to https:// with host, port, path and query; ACME challenges are routed', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url, '  redirectHttp: true\n'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const tlsPort = gw.gateway.tlsAddress()!.port;

  const redirected = await curl(`http://edge.test:${gw.port}/a/b?x=1&y=%20`, gw.port);
  t.equal(redirected.status, 308);
  t.equal(redirected.headers.location, `https://edge.test:${tlsPort}/a/b?x=1&y=%20`);
  t.match(redirected.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  t.notOk(redirected.headers.connection === 'close', 'a bodiless request keeps its connection');
  const post = await curl(`http://edge.test:${gw.port}/form`, gw.port, ['-X', 'POST', '--data', 'a=1']);
  t.equal(post.status, 308, 'any method: 308 keeps it and its body for the second try');
  t.equal(post.headers.connection, 'close', 'the unread body closes the connection');
  t.equal(up.requests.length, 0, 'nothing reached the upstream');

  const challenge = await curl(`http://edge.test:${gw.port}/.well-known/acme-challenge/token-1`, gw.port);
  t.equal(challenge.status, 200, 'an ACME HTTP-01 challenge is routed as usual');
  t.equal(up.requests.at(-1)?.url, '/.well-known/acme-challenge/token-1');
  t.equal((await curl(`http://edge.test:${gw.port}/.well-known/acme-challenge/../admin`, gw.port, ['--path-as-is'])).status, 308,
    'a path that only looks like one, before normalization, is redirected');

  // HTTP/1.0 without Host: no host to redirect to.
  const socket = net.connect(gw.port, '127.0.0.1');
  socket.write('GET / HTTP/1.0\r\n\r\n');
  let raw = '';
  socket.on('data', (c: Buffer) => { raw += c.toString(); });
  await once(socket, 'close');
  t.match(raw, /^HTTP\/1\.1 400 [^]*GW_ERR_BAD_HOST/);

  const secure = await curl(`https://edge.test:${tlsPort}/a`, tlsPort);
  t.equal(secure.status, 200, 'HTTPS requests are served');

  // Off after a reload: the plain listener serves again.
  await gw.rewrite(routes(up.url));
  t.match(await gw.gateway.reload(), { result: 'applied' });
  t.equal((await curl(`http://edge.test:${gw.port}/a`, gw.port)).status, 200);
});

t.test('HSTS goes on HTTPS answers only, the gateway\'s own and the upstream\'s (whose value it replaces)', async (t) => {
  const up = await startRecordingUpstream((req, res) => {
    res.writeHead(200, req.url === '/own' ? { 'strict-transport-security': 'max-age=1' } : {});
    res.end('ok');
  });
  const gw = await startGateway(routes(up.url, '  hsts: { maxAgeS: 31536000, includeSubDomains: true }\n').replace('  - { match: { path: / }, service: svc }', '  - { match: { path: /app }, service: svc }\n  - { match: { path: /own }, service: svc }'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const tlsPort = gw.gateway.tlsAddress()!.port;
  const value = 'max-age=31536000; includeSubDomains';
  t.equal((await curl(`https://edge.test:${tlsPort}/app`, tlsPort)).headers['strict-transport-security'], value);
  const own = await curl(`https://edge.test:${tlsPort}/own`, tlsPort);
  t.equal(own.headers['strict-transport-security'], value, 'replaces the upstream\'s');
  t.equal(own.head.match(/strict-transport-security/gi)?.length ?? 0, 1, 'sent once');
  const missing = await curl(`https://edge.test:${tlsPort}/nothing-here`, tlsPort);
  t.equal(missing.status, 404);
  t.equal(missing.headers['strict-transport-security'], value, 'on the gateway\'s error answers too');
  const plain = await curl(`http://edge.test:${gw.port}/app`, gw.port);
  t.equal(plain.status, 200);
  t.notOk('strict-transport-security' in plain.headers, 'never over plain HTTP (RFC 6797 §7.2)');
});

t.test('the upstream sees X-Forwarded-Proto https for requests on the TLS listener; trusted proxies keep theirs', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const tlsPort = gw.gateway.tlsAddress()!.port;
  await curl(`https://edge.test:${tlsPort}/x`, tlsPort, ['-H', 'X-Forwarded-Proto: gopher']);
  t.equal(up.requests.at(-1)?.headers['x-forwarded-proto'], 'https', 'an untrusted client\'s value is replaced');
  await curl(`http://edge.test:${gw.port}/x`, gw.port);
  t.equal(up.requests.at(-1)?.headers['x-forwarded-proto'], 'http');
  const access = gw.logs.filter((l) => l.log === 'access');
  t.match(access.at(-2), { path: '/x', tls: /^TLSv1\.[23]$/, alpn: 'h2', proto: 'h2' }, 'the access line names the TLS version and ALPN (curl asks for h2)');
  t.notOk('tls' in access.at(-1)!, 'a plain request\'s line has no tls field');

  // A trusted proxy in front tells the scheme its client used; without it, the gateway's own.
  await gw.rewrite(routes(up.url).replace('10.9.9.9', '127.0.0.1'));
  t.match(await gw.gateway.reload(), { result: 'applied' });
  await curl(`https://edge.test:${tlsPort}/x`, tlsPort, ['-H', 'X-Forwarded-Proto: http']);
  t.equal(up.requests.at(-1)?.headers['x-forwarded-proto'], 'http', 'a trusted proxy\'s value is kept');
  await curl(`https://edge.test:${tlsPort}/x`, tlsPort);
  t.equal(up.requests.at(-1)?.headers['x-forwarded-proto'], 'https');
});

t.test('a WebSocket upgrade on the TLS listener is tunnelled', async (t) => {
  const up = await startWebSocketEcho();
  const gw = await startGateway(routes(`http://127.0.0.1:${up.port}`));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const socket = tls.connect({ host: '127.0.0.1', port: gw.gateway.tlsAddress()!.port, servername: 'edge.test', rejectUnauthorized: false });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  socket.write(`GET /ws HTTP/1.1\r\nHost: edge.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const [head] = await once(socket, 'data') as [Buffer];
  t.match(head.toString(), /^HTTP\/1\.1 101 /);
  socket.write(encodeFrame('over tls', true));
  const [frame] = await once(socket, 'data') as [Buffer];
  t.equal(decodeFrame(frame), 'echo:over tls');
  t.equal(up.upgrades[0]?.['x-forwarded-proto'], 'https');
  socket.destroy();
});

t.test('a client that never finishes its TLS handshake is cut after server.headersTimeoutMs', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url, '', ', headersTimeoutMs: 300'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const socket = net.connect(gw.gateway.tlsAddress()!.port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  // Node's default would hold it for 120 s; the bound here is generous for a busy machine.
  const closed = await Promise.race([once(socket, 'close').then(() => true), new Promise((r) => setTimeout(r, 10_000, false))]);
  t.equal(closed, true, 'the gateway closed the silent connection');
  socket.destroy();
});

t.test('row 65: a plain HTTP request to the TLS port gets 400 GW_ERR_HTTPS_REQUIRED in plain text, with a request id', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const socket = net.connect(gw.gateway.tlsAddress()!.port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('GET /x HTTP/1.1\r\nHost: edge.test\r\n\r\n');
  let answer = '';
  socket.setEncoding('utf8').on('data', (s: string) => { answer += s; });
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 10_000))]);
  socket.destroy();
  t.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match(answer, /\r\nx-request-id: [0-9a-f-]+\r\n/i);
  t.match(answer, /"error":"GW_ERR_HTTPS_REQUIRED"/);
  t.equal(up.requests.length, 0, 'nothing reached the upstream');
  // The listener still speaks TLS to the next client.
  t.equal((await curl(`https://edge.test:${gw.gateway.tlsAddress()!.port}/y`, gw.gateway.tlsAddress()!.port)).status, 200);
});
