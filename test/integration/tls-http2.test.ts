import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate } from '../helpers/certificate-authority.js';
import { waitFor } from '../helpers/capture-log.js';
import { freePort } from '../helpers/free-port.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

const run = promisify(execFile);

// Node warns (once per process) when an HTTP/2 answer is given a reason phrase or a Connection header.
const warnings: string[] = [];
// (Deprecations, such as one the test runner's own loader causes, are not answers' warnings.)
process.on('warning', (w) => { if (w.name !== 'DeprecationWarning') warnings.push(w.message); });

let ca: CertificateAuthority;
let cert: IssuedCertificate;
t.before(async () => {
  ca = await createCertificateAuthority();
  cert = await ca.issue('edge', ['edge.test', 'a.test', 'b.test']);
});
t.teardown(() => ca.remove());

function routes(upstream: string, down: string, tlsExtra = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug }
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${cert.cert}, key: ${cert.key} }]
${tlsExtra}services:
  svc: { discovery: { type: static, endpoints: ["${upstream}"] } }
  other: { discovery: { type: static, endpoints: ["${upstream}"] }, hostHeader: other.internal }
  down: { discovery: { type: static, endpoints: ["${down}"] } }
routes:
  - { match: { path: /small }, service: svc, maxBodyBytes: 1000 }
  - { match: { path: /down }, service: down }
  - { match: { host: b.test, path: / }, service: other }
  - { match: { path: / }, service: svc }
`;
}

async function start(t: Test, tlsExtra = ''): Promise<{ gw: GatewayUnderTest; up: RecordingUpstream; port: number }> {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url, `http://127.0.0.1:${await freePort()}`, tlsExtra));
  t.teardown(async () => { await gw.close(); await up.close(); });
  return { gw, up, port: gw.gateway.tlsAddress()!.port };
}

interface Answer { status: number; headers: http2.IncomingHttpHeaders; body: string }

/** One request on an HTTP/2 session of Node's client. */
async function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<Answer> {
  const stream = session.request(headers, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  const [head] = await once(stream, 'response') as [http2.IncomingHttpHeaders];
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'end');
  return { status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString() };
}

function connect(t: Test, port: number, servername = 'edge.test'): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
  session.on('error', () => {});
  t.teardown(() => { session.destroy(); });
  return session;
}

const accessLines = (gw: GatewayUnderTest) => gw.logs.filter((l) => l.log === 'access');

t.test('curl --http2 gets 200 over h2; HTTP/1.1 on the same TLS port still works; the access line says which', async (t) => {
  const { gw, up, port } = await start(t);
  const curl = async (...extra: string[]) => (await run('curl', ['-sk', '--max-time', '10', '--resolve', `edge.test:${port}:127.0.0.1`,
    '-o', '/dev/null', '-w', '%{http_code} %{http_version}', ...extra, `https://edge.test:${port}/echo/hi`])).stdout;
  t.equal(await curl('--http2'), '200 2', 'HTTP/2');
  const seen = up.requests.at(-1)!;
  t.equal(seen.url, '/echo/hi');
  t.equal(seen.headers.host, `edge.test:${port}`, ':authority is passed on as Host');
  t.equal(seen.headers['x-forwarded-proto'], 'https');
  t.notOk(seen.rawHeaders.some((h) => h.startsWith(':')), 'no pseudo-header goes upstream');
  t.match(accessLines(gw).at(-1), { path: '/echo/hi', status: 200, proto: 'h2', alpn: 'h2', tls: /^TLSv1\.[23]$/ });

  t.equal(await curl('--http1.1'), '200 1.1', 'HTTP/1.1 over the same port (ALPN http/1.1)');
  const h1 = accessLines(gw).at(-1)!;
  t.match(h1, { status: 200, alpn: 'http/1.1' });
  t.notOk('proto' in h1, 'an HTTP/1.1 line has no proto field');

  t.equal((await fetch(`${gw.url}/plain`)).status, 200, 'the plain listener');
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.match(metrics, 'gantry_requests_by_protocol_total{protocol="HTTP/2",tls="true"} 1\n', 'counted per protocol');
  t.match(metrics, 'gantry_requests_by_protocol_total{protocol="HTTP/1.1",tls="true"} 1\n');
  t.match(metrics, 'gantry_requests_by_protocol_total{protocol="HTTP/1.1",tls="false"} 1\n');
});

t.test('tls.http2: false offers http/1.1 only; changing it needs a restart', async (t) => {
  const { gw, up, port } = await start(t, '  http2: false\n');
  const { stdout } = await run('curl', ['-sk', '--http2', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `https://127.0.0.1:${port}/x`]);
  t.equal(stdout, '200 1.1');
  await gw.rewrite(routes(up.url, 'http://127.0.0.1:1'));
  t.match(await gw.gateway.reload(), { result: 'applied', changes: { restartRequired: ['tls.http2'] } });
});

t.test('nghttp: a GET and a POST with a body go through', async (t) => {
  const { up, port } = await start(t);
  const { stdout: get } = await run('nghttp', ['-H', ':authority: edge.test', `https://127.0.0.1:${port}/n/get`], { timeout: 10_000 });
  t.match(JSON.parse(get), { method: 'GET', url: '/n/get' });
  const file = join(tmpdir(), `gantry-h2-body-${process.pid}`);
  await writeFile(file, 'x'.repeat(300));
  t.teardown(() => run('rm', ['-f', file]));
  const { stdout: post } = await run('nghttp', ['-d', file, '-H', ':authority: edge.test', `https://127.0.0.1:${port}/n/post`], { timeout: 10_000 });
  t.match(JSON.parse(post), { method: 'POST', url: '/n/post', bodyBytes: 300 });
  t.equal(up.requests.at(-1)?.body.length, 300);
});

t.test('many concurrent streams on one connection all get their answers', async (t) => {
  const { up, port } = await start(t);
  const session = connect(t, port);
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => request(session, { ':path': `/many/${i}` })));
  t.same(answers.map((a) => a.status), answers.map(() => 200));
  t.same(answers.map((a) => (JSON.parse(a.body) as { url: string }).url), answers.map((_, i) => `/many/${i}`), 'each stream its own answer');
  t.equal(up.requests.length, 60);
});

t.test('a body over maxBodyBytes is refused with 413, with or without content-length; the connection goes on', async (t) => {
  const { up, port } = await start(t);
  const session = connect(t, port);
  const big = Buffer.alloc(5000, 'b');
  const declared = await request(session, { ':method': 'POST', ':path': '/small', 'content-length': String(big.length) }, big);
  t.equal(declared.status, 413);
  t.equal(JSON.parse(declared.body).error, 'GW_ERR_BODY_TOO_LARGE');
  const streamed = await request(session, { ':method': 'POST', ':path': '/small' }, big);
  t.equal(streamed.status, 413, 'a body without content-length is counted as it streams');
  t.equal(JSON.parse(streamed.body).error, 'GW_ERR_BODY_TOO_LARGE');
  t.notOk('connection' in streamed.headers, 'no Connection header on HTTP/2');
  const small = await request(session, { ':method': 'POST', ':path': '/small' }, Buffer.alloc(500, 's'));
  t.equal(small.status, 200, 'a body under the limit, no content-length, on the same connection');
  t.equal(up.requests.at(-1)?.body.length, 500);
});

t.test('an upstream answer before the whole body arrived is relayed whole; the stream ends, the connection goes on', async (t) => {
  const up = await startRecordingUpstream();
  t.teardown(() => up.close());
  // Answers at once, without reading the upload.
  up.server.removeAllListeners('request');
  up.server.on('request', (_req, res) => { res.writeHead(200, { 'content-length': '5' }); res.end('early'); });
  const gw = await startGateway(routes(up.url, 'http://127.0.0.1:1'));
  t.teardown(() => gw.close());
  const session = connect(t, gw.gateway.tlsAddress()!.port);
  const stream = session.request({ ':method': 'POST', ':path': '/early' }, { endStream: false });
  stream.on('error', () => {});
  stream.write(Buffer.alloc(1000, 'a'));   // and never ends its body
  const [head] = await once(stream, 'response') as [http2.IncomingHttpHeaders];
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'close');
  t.equal(head[':status'], 200);
  t.equal(Buffer.concat(chunks).toString(), 'early', 'the whole answer');
  t.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the stream is reset without error (RFC 9113 §8.1)');
  t.equal((await request(session, { ':path': '/next' })).status, 200, 'the connection goes on');
});

t.test(':authority is the host routing sees', async (t) => {
  const { up, port } = await start(t);
  const session = connect(t, port);
  await request(session, { ':path': '/h', ':authority': 'b.test' });
  t.equal(up.requests.at(-1)?.headers.host, 'other.internal', 'b.test routed to the service with a fixed Host');
  await request(session, { ':path': '/h', ':authority': 'a.test' });
  t.equal(up.requests.at(-1)?.headers.host, 'a.test', 'a.test to the any-host route');
  const mismatch = await request(session, { ':path': '/h', ':authority': 'a.test', host: 'b.test' });
  t.equal(mismatch.status, 400, 'a Host naming another host than :authority');
  t.equal(JSON.parse(mismatch.body).error, 'GW_ERR_BAD_HOST');
});

t.test('too many header fields: 431 on that stream', async (t) => {
  const { up, port } = await start(t);
  const session = connect(t, port);
  const headers: http2.OutgoingHttpHeaders = { ':path': '/many-headers' };
  for (let i = 0; i < 101; i++) headers[`x-h${i}`] = 'v';
  const answer = await request(session, headers);
  t.equal(answer.status, 431);
  t.equal(JSON.parse(answer.body).error, 'GW_ERR_TOO_MANY_HEADERS');
  t.equal(up.requests.length, 0);
  t.equal((await request(session, { ':path': '/fine' })).status, 200, 'the connection goes on');
});

t.test('an upstream that is down: the gateway\'s error over h2 with the request id', async (t) => {
  const { gw, port } = await start(t);
  const session = connect(t, port);
  const answer = await request(session, { ':path': '/down', 'x-request-id': 'req-h2-down' });
  t.ok(answer.status === 502 || answer.status === 503, `status ${answer.status}`);
  t.equal(answer.headers['x-request-id'], 'req-h2-down');
  t.equal(JSON.parse(answer.body).request_id, 'req-h2-down');
  t.match(accessLines(gw).at(-1), { reqId: 'req-h2-down', proto: 'h2', status: answer.status });
});

t.test('Expect: 100-continue over h2 is answered after routing; CONNECT is refused with 405', async (t) => {
  const { up, port } = await start(t);
  const session = connect(t, port);
  const stream = session.request({ ':method': 'POST', ':path': '/cont', expect: '100-continue', 'content-length': '3' }, { endStream: false });
  await once(stream, 'continue');
  stream.end('abc');
  const [head] = await once(stream, 'response') as [http2.IncomingHttpHeaders];
  stream.resume();
  t.equal(head[':status'], 200);
  await once(stream, 'end');
  t.equal(up.requests.at(-1)?.body.toString(), 'abc');
  t.notOk('expect' in up.requests.at(-1)!.headers);

  const connectStream = session.request({ ':method': 'CONNECT', ':authority': 'elsewhere.test:443' }, { endStream: false });
  const [refused] = await once(connectStream, 'response') as [http2.IncomingHttpHeaders];
  t.equal(refused[':status'], 405);
  connectStream.destroy();
});

t.test('an idle HTTP/2 session is closed after server.keepAliveTimeoutMs', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url, 'http://127.0.0.1:1').replace('log: { level: debug }', 'log: { level: debug }\nserver: { keepAliveTimeoutMs: 300 }'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const session = connect(t, gw.gateway.tlsAddress()!.port);
  t.equal((await request(session, { ':path': '/idle' })).status, 200);
  await waitFor(() => session.closed || session.destroyed, 5000, 'the idle session closed by the gateway');
  t.pass('closed');
});

t.test('HSTS on HTTPS answers over HTTP/2 and over HTTP/1.1 on the same port', async (t) => {
  const { port } = await start(t, '  hsts: { maxAgeS: 600 }\n');
  for (const version of ['--http2', '--http1.1']) {
    const { stdout } = await run('curl', ['-sk', '-D', '-', '-o', '/dev/null', version, '--max-time', '10', `https://127.0.0.1:${port}/hsts`]);
    t.match(stdout, /^strict-transport-security: max-age=600\r$/im, version);
  }
});

t.test('shutdown: an HTTP/2 request in flight finishes and its connection gets GOAWAY; past the grace it is cut', async (t) => {
  let answer: (() => void) | undefined;
  const up = await startRecordingUpstream((_req, res) => { answer = () => { res.writeHead(200); res.end('late'); }; });
  t.teardown(() => up.close());
  const yaml = routes(up.url, 'http://127.0.0.1:1');
  const gw = await startGateway(yaml);
  const session = connect(t, gw.gateway.tlsAddress()!.port);
  const goaway = once(session, 'goaway');
  const inFlight = request(session, { ':path': '/slow' });
  await waitFor(() => answer, 5000, 'the request upstream');
  const stopped = gw.gateway.shutdown(5000);
  await goaway;
  answer!();
  t.equal((await inFlight).status, 200, 'the request in flight is answered');
  t.same(await stopped, { forced: false });

  answer = undefined;
  const gw2 = await startGateway(yaml);
  t.teardown(() => gw2.close());
  const session2 = connect(t, gw2.gateway.tlsAddress()!.port);
  const stream = session2.request({ ':path': '/never' });
  stream.on('error', () => {});
  const cut = new Promise((resolve) => { stream.on('response', () => resolve('answered')); stream.on('close', () => resolve('cut')); });
  await waitFor(() => answer, 5000, 'the request upstream');
  t.same(await gw2.gateway.shutdown(200), { forced: true }, 'the grace ran out: the session is destroyed');
  t.equal(await cut, 'cut');
});

t.test('shutdown past the grace cuts a connection whose client stopped reading, whose session cannot end by itself', async (t) => {
  // 64 MB, more than loopback's socket buffers hold: the gateway's write to a client that stopped reading never ends.
  const big = Buffer.alloc(64 * 1024 * 1024, 'x');
  let asked = false;
  const up = await startRecordingUpstream((_req, res) => { asked = true; res.writeHead(200); res.end(big); });
  t.teardown(() => up.close());
  const gw = await startGateway(routes(up.url, 'http://127.0.0.1:1'));
  t.teardown(() => gw.close());
  // nghttp with 1 GB windows, so HTTP/2 flow control never holds the answer back; stopped once the request is upstream.
  const client = spawn('nghttp', ['-n', '-w', '30', '-W', '30', '-H', ':authority: edge.test', `https://127.0.0.1:${gw.gateway.tlsAddress()!.port}/big`], { stdio: 'ignore' });
  t.teardown(() => { client.kill('SIGKILL'); });
  await waitFor(() => asked, 10_000, 'the request upstream');
  client.kill('SIGSTOP');
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    gw.gateway.shutdown(300),
    new Promise((resolve) => { timer = setTimeout(resolve, 10_000, 'still draining after 10 s'); }),
  ]);
  clearTimeout(timer);
  t.same(stopped, { forced: true }, 'the grace ran out and the connection was cut');
});

t.test('no answer above made Node warn about an HTTP/1.1-only header or reason phrase', async (t) => {
  t.same(warnings, []);
});
