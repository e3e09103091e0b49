import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate } from '../helpers/certificate-authority.js';
import { routesYaml, startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/test-certificates.js';

let certs: TestCertificates;
let edgeCa: CertificateAuthority;
let edge: IssuedCertificate;
t.before(async () => {
  certs = await makeTestCertificates();
  edgeCa = await createCertificateAuthority();
  edge = await edgeCa.issue('edge', ['edge.test']);
});
t.teardown(async () => { await certs.remove(); await edgeCa.remove(); });

interface Seen { readonly version: string; readonly headers: http2.IncomingHttpHeaders; readonly body: string }
interface H2Upstream { readonly url: string; readonly seen: Seen[] }

/**
 * An HTTP/2 upstream (over TLS, HTTP/1.1 allowed too, or h2c) that records what it got and answers with a body and a
 * trailer.
 */
async function startH2Upstream(t: Test, secure: boolean): Promise<H2Upstream> {
  const seen: Seen[] = [];
  const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ version: req.httpVersion, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.setHeader('content-type', 'text/plain');
      if (req.httpVersion === '2.0') res.addTrailers({ 'x-checksum': 'abc' });
      res.end(`over ${req.httpVersion}`);
    });
  };
  const server = secure
    ? http2.createSecureServer({ key: await certs.read('serverKey'), cert: await certs.read('serverCert'), allowHTTP1: true }, handler)
    : http2.createServer(handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => { sessions.add(s); s.once('close', () => sessions.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sessions) s.destroy(); server.close(() => resolve()); }));
  return { url: `${secure ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const caFile = () => join(certs.dir, certs.files.ca);

interface Http1Answer { status: number; headers: http.IncomingHttpHeaders; body: string; trailers: NodeJS.Dict<string> }

/** An HTTP/1.1 request with a chunked body and hop-by-hop headers a client may send. */
function http1Post(gw: GatewayUnderTest, headers: http.OutgoingHttpHeaders): Promise<Http1Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}/x`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), trailers: res.trailers }));
    });
    req.on('error', reject);
    req.write('hel');
    req.end('lo');
  });
}

t.test('row 60: protocol h2 over TLS: an HTTP/1.1 request goes upstream as HTTP/2, without hop-by-hop headers but with te: trailers', async (t) => {
  const up = await startH2Upstream(t, true);
  const gw = await startGateway(routesYaml([up.url], undefined, `    protocol: h2\n    tls: { caFile: ${caFile()}, serverName: localhost }\n`));
  t.teardown(() => gw.close());
  const res = await http1Post(gw, { connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-connection': 'x' });
  t.equal(res.status, 200);
  t.equal(res.body, 'over 2.0', 'the upstream was spoken to over HTTP/2');
  t.equal(res.headers['content-type'], 'text/plain', 'the upstream\'s HTTP/2 head is relayed');
  t.match(res.headers['x-request-id'], /\S+/, 'with the request id');
  t.same(res.trailers, { 'x-checksum': 'abc' }, 'the upstream\'s trailers reach an HTTP/1.1 client (chunked)');
  const seen = up.seen[0]!;
  t.equal(seen.body, 'hello', 'the streamed body arrived whole');
  t.equal(seen.headers.te, 'trailers', 'te: trailers is sent');
  for (const name of ['connection', 'keep-alive', 'x-hop', 'proxy-connection', 'transfer-encoding']) t.equal(seen.headers[name], undefined, `no ${name}`);

  const other = await http1Post(gw, { te: 'gzip' });
  t.equal(other.status, 200, 'another TE value is dropped as hop-by-hop (HTTP/2 allows only trailers)');
  t.equal(up.seen[1]!.headers.te, undefined);
});

t.test('protocol h2 to an http:// endpoint is h2c with prior knowledge', async (t) => {
  const up = await startH2Upstream(t, false);
  const gw = await startGateway(routesYaml([up.url], undefined, '    protocol: h2\n'));
  t.teardown(() => gw.close());
  const res = await http1Post(gw, {});
  t.equal(res.status, 200);
  t.equal(res.body, 'over 2.0');
  t.same(res.trailers, { 'x-checksum': 'abc' });
});

t.test('row 59: protocol h2 to an http:// endpoint that speaks only HTTP/1.1: 502 GW_ERR_UPSTREAM_RESET', async (t) => {
  const up = http.createServer((_req, res) => res.end('h1'));
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  t.teardown(() => new Promise<void>((resolve) => { up.closeAllConnections(); up.close(() => resolve()); }));
  const gw = await startGateway(routesYaml([`http://127.0.0.1:${(up.address() as AddressInfo).port}`], undefined, '    protocol: h2\n    retry: { attempts: 0 }\n'));
  t.teardown(() => gw.close());
  const res = await fetch(`${gw.url}/x`);
  t.equal(res.status, 502);
  t.equal((await res.json() as { error: string }).error, 'GW_ERR_UPSTREAM_RESET', 'the h2c preface is not HTTP/1.1: the upstream closes');
});

t.test('an HTTP/2 client request is forwarded over HTTP/2 and gets the upstream\'s trailers', async (t) => {
  const up = await startH2Upstream(t, true);
  const gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${edge.cert}, key: ${edge.key} }]
services:
  svc: { discovery: { type: static, endpoints: ["${up.url}"] }, protocol: h2, tls: { caFile: ${caFile()}, serverName: localhost } }
routes:
  - { match: { path: / }, service: svc }
`);
  t.teardown(() => gw.close());
  const session = http2.connect(`https://127.0.0.1:${gw.gateway.tlsAddress()!.port}`, { servername: 'edge.test', ca: edgeCa.caPem });
  session.on('error', () => {});
  t.teardown(() => { session.destroy(); });
  const stream = session.request({ ':method': 'POST', ':path': '/x', te: 'trailers' });
  stream.end('hello');
  const [head] = await once(stream, 'response') as [http2.IncomingHttpHeaders];
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
    stream.once('trailers', resolve);
    stream.once('close', () => resolve({}));
  });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'end');
  t.equal(head[':status'], 200);
  t.equal(Buffer.concat(chunks).toString(), 'over 2.0');
  t.equal((await trailers)['x-checksum'], 'abc', 'the trailers arrive as HTTP/2 trailers');
  t.equal(up.seen[0]!.headers.te, 'trailers');
});

t.test('protocol http1 (the default) stays HTTP/1.1 to an https:// upstream that would take h2', async (t) => {
  const up = await startH2Upstream(t, true);
  const gw = await startGateway(routesYaml([up.url], undefined, `    tls: { caFile: ${caFile()}, serverName: localhost }\n`));
  t.teardown(() => gw.close());
  const res = await http1Post(gw, {});
  t.equal(res.body, 'over 1.1', 'ALPN offered http/1.1 only');
});
