import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate } from '../helpers/certificate-authority.js';
import { waitFor } from '../helpers/capture-log.js';
import { freePort } from '../helpers/free-port.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';

// Python's grpcio (Debian's python3-grpcio) as the gRPC server and client: a real gRPC stack on both sides.
const PYTHON = '/usr/bin/python3';
const PEER = fileURLToPath(new URL('../../../test/fixtures/grpc_peer.py', import.meta.url));
const run = promisify(execFile);

let ca: CertificateAuthority;
let edge: IssuedCertificate;
let grpcPort = 0;
let gw: GatewayUnderTest;
let silentUrl = '';

t.before(async () => {
  ca = await createCertificateAuthority();
  edge = await ca.issue('edge', ['edge.test']);
  const server = spawn(PYTHON, [PEER, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(async () => { server.stdin.end(); if (server.exitCode === null) await once(server, 'exit'); });
  let out = '';
  server.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  grpcPort = Number((await waitFor(() => /PORT (\d+)/.exec(out)?.[1], 15_000, 'the gRPC server\'s port')));
  silentUrl = await startSilentUpstream();
  gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug }
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${edge.cert}, key: ${edge.key} }]
services:
  grpc: { discovery: { type: static, endpoints: ["http://127.0.0.1:${grpcPort}"] }, protocol: h2 }
  down: { discovery: { type: static, endpoints: ["http://127.0.0.1:${await freePort()}"] }, protocol: h2 }
  silent: { discovery: { type: static, endpoints: ["${silentUrl}"] }, protocol: h2, timeoutMs: 60000, tryTimeoutMs: 60000 }
  busy: { discovery: { type: static, endpoints: ["${silentUrl}"] }, protocol: h2, bulkhead: { maxConcurrent: 1 } }
routes:
  - { match: { path: /test.Down }, service: down }
  - { match: { path: /test.Silent }, service: silent }
  - { match: { path: /test.Busy }, service: busy }
  - { match: { path: /test.Echo }, service: grpc }
`);
});
t.teardown(async () => { await gw?.close(); await ca.remove(); });

/** An h2c upstream that takes every stream and never answers (the gateway's deadline and bulkhead tests). */
async function startSilentUpstream(): Promise<string> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => { sessions.add(s); s.once('close', () => sessions.delete(s)); });
  server.on('stream', (stream: http2.ServerHttp2Stream) => { stream.resume(); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sessions) s.destroy(); server.close(() => resolve()); }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface CallResult { code: string; details: string; messages: string[]; metadata: Record<string, string> }

/** One call by Python's gRPC client over the gateway's TLS listener (trusting the test CA). */
async function call(method: string, payload: string, timeoutS?: number, service = 'test.Echo'): Promise<CallResult> {
  const args = [PEER, 'call', `127.0.0.1:${gw.gateway.tlsAddress()!.port}`, ca.caFile, 'edge.test', `/${service}/${method}`, payload];
  if (timeoutS !== undefined) args.push(String(timeoutS));
  const { stdout } = await run(PYTHON, args, { timeout: 30_000 });
  return JSON.parse(stdout) as CallResult;
}

t.test('a unary call goes through end to end', async (t) => {
  const r = await call('Unary', 'hi');
  t.equal(r.code, 'OK');
  t.same(r.messages, ['echo:hi']);
  const line = await waitFor(() => gw.logs.find((l) => l.log === 'access' && l.path === '/test.Echo/Unary'));
  t.match(line, { status: 200, proto: 'h2', service: 'grpc' }, 'an access line as for any request');
});

t.test('a server-streaming call gets every message', async (t) => {
  const r = await call('Stream', 'm');
  t.equal(r.code, 'OK');
  t.same(r.messages, ['m-0', 'm-1', 'm-2']);
});

t.test('the upstream\'s own status (a trailers-only answer) reaches the client with its message', async (t) => {
  const r = await call('Fail', 'x');
  t.equal(r.code, 'NOT_FOUND');
  t.equal(r.details, 'no such thing: x');
});

t.test('a deadline that expires: DEADLINE_EXCEEDED', async (t) => {
  const r = await call('Slow', '5', 0.5);
  t.equal(r.code, 'DEADLINE_EXCEEDED');
});

t.test('an upstream that is down: UNAVAILABLE, with the gateway\'s message and the request id', async (t) => {
  const r = await call('Unary', 'x', undefined, 'test.Down');
  t.equal(r.code, 'UNAVAILABLE');
  t.equal(r.details, 'could not connect to the upstream');
  t.match(r.metadata['x-request-id'], /^\S+$/, 'the request id travels with the status');
  const line = await waitFor(() => gw.logs.find((l) => l.log === 'access' && l.path === '/test.Down/Unary'));
  t.match(line, { status: 200, err: 'GW_ERR_UPSTREAM_CONNECT' }, 'the access line has the code and the status sent');
});

// ---- the gateway's side, seen frame by frame with Node's HTTP/2 client ------------------------------------------

function connect(t: Test): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${gw.gateway.tlsAddress()!.port}`, { servername: 'edge.test', ca: ca.caPem });
  session.on('error', () => {});
  t.teardown(() => { session.destroy(); });
  return session;
}

/** One gRPC message frame: not compressed, 4-byte length, the bytes. */
function frame(payload: string): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

interface RawAnswer { headers: http2.IncomingHttpHeaders; flags: number; body: Buffer }

async function rawCall(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  stream.end(frame('x'));
  const [head, flags] = await once(stream, 'response') as [http2.IncomingHttpHeaders, number];
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'close');
  return { headers: head, flags, body: Buffer.concat(chunks) };
}

t.test('row 61: the gateway\'s own error is a trailers-only gRPC answer: one HEADERS frame ending the stream, no JSON', async (t) => {
  const session = connect(t);
  const down = await rawCall(session, '/test.Down/Unary');
  t.equal(down.headers[':status'], 200, 'HTTP 200');
  t.equal(down.flags & http2.constants.NGHTTP2_FLAG_END_STREAM, http2.constants.NGHTTP2_FLAG_END_STREAM, 'the head ends the stream');
  t.equal(down.headers['content-type'], 'application/grpc');
  t.equal(down.headers['grpc-status'], '14', 'UNAVAILABLE');
  t.equal(down.headers['grpc-message'], 'could not connect to the upstream');
  t.match(down.headers['x-request-id'], /^\S+$/);
  t.equal(down.body.length, 0, 'no body');
  const unrouted = await rawCall(session, '/nowhere.Service/Call');
  t.equal(unrouted.headers['grpc-status'], '12', 'no route: UNIMPLEMENTED');
});

t.test('grpc-timeout shorter than the route deadline bounds the call: DEADLINE_EXCEEDED from the gateway', async (t) => {
  const session = connect(t);
  // The route's deadline is 60 s: only the client's 300 ms can end this call within the test's wait.
  const answer = await Promise.race([
    rawCall(session, '/test.Silent/Wait', { 'grpc-timeout': '300m' }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref()),
  ]);
  t.equal(answer.headers['grpc-status'], '4', 'DEADLINE_EXCEEDED');
  t.equal(answer.headers['grpc-message'], 'the upstream did not answer in time');
});

t.test('a full bulkhead answers RESOURCE_EXHAUSTED', async (t) => {
  const session = connect(t);
  const first = session.request({ ':method': 'POST', ':path': '/test.Busy/Hold', 'content-type': 'application/grpc' });
  first.on('error', () => {});
  first.end(frame('x'));
  // Once the gateway forwarded the first call to the silent upstream, the service's one slot is held.
  const second = await waitFor(async () => {
    const r = await rawCall(session, '/test.Busy/Hold', { 'grpc-timeout': '2S' });
    return r.headers['grpc-status'] === '8' ? r : false;
  }, 10_000, 'a refusal of the second call');
  t.equal(second.headers['grpc-message'], 'the service is at its concurrency limit');
  first.close();
});

t.test('a gRPC request body is streamed upstream, not buffered: the answer can start before the client ends', async (t) => {
  const seen: string[] = [];
  const up = http2.createServer();
  up.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.once('data', (c: Buffer) => {
      seen.push(c.subarray(5).toString());
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.write(frame('got-first'));
      stream.on('data', (more: Buffer) => seen.push(more.subarray(5).toString()));
      stream.on('end', () => stream.end(undefined, () => {}));
    });
    stream.on('error', () => {});
  });
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  t.teardown(() => new Promise<void>((resolve) => up.close(() => resolve())));
  const local = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${edge.cert}, key: ${edge.key} }]
services:
  up: { discovery: { type: static, endpoints: ["http://127.0.0.1:${(up.address() as AddressInfo).port}"] }, protocol: h2 }
routes:
  - { match: { path: / }, service: up }
`);
  t.teardown(() => local.close());
  const session = http2.connect(`https://127.0.0.1:${local.gateway.tlsAddress()!.port}`, { servername: 'edge.test', ca: ca.caPem });
  session.on('error', () => {});
  t.teardown(() => { session.destroy(); });
  const stream = session.request({ ':method': 'POST', ':path': '/test.Chat/Talk', 'content-type': 'application/grpc', te: 'trailers' });
  stream.write(frame('one'));
  const [head] = await once(stream, 'response') as [http2.IncomingHttpHeaders];
  t.equal(head[':status'], 200, 'the answer began while the request was still open');
  const [first] = await once(stream, 'data') as [Buffer];
  t.equal(first.subarray(5).toString(), 'got-first');
  stream.end(frame('two'));
  await once(stream, 'close');
  t.same(seen, ['one', 'two'], 'both messages reached the upstream, in order');
});
