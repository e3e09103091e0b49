import http2 from 'node:http2';
import { once } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import t, { type Test } from 'tap';
import { createCertificateAuthority, type CertificateAuthority, type IssuedCertificate } from '../helpers/certificate-authority.js';
import { waitFor } from '../helpers/capture-log.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { FRAME, frame, getHeaders, rawHttp2, rstStream } from '../helpers/http2-frames.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { STREAM_RESET_BURST } from '../../gateway/server/http2-sessions.js';

const ENHANCE_YOUR_CALM = 0xb;
/**
 * What the gateway may keep while it fends an attack off: far below what the attack would cost unbounded. Measured as
 * what stays after a full collection (heap and buffers outside it): RSS also holds garbage not yet collected and
 * memory V8 has not handed back, which moved by more than this between runs of the same code.
 */
const GROWTH_BOUND = 64 * 1024 * 1024;
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function retained(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
function bounded(t: Test, before: number): void {
  const grew = retained() - before;
  t.ok(grew < GROWTH_BOUND, `memory kept after a full GC grew by ${(grew / 1048576).toFixed(1)} MiB (bound ${GROWTH_BOUND / 1048576})`);
}

let ca: CertificateAuthority;
let cert: IssuedCertificate;
t.before(async () => {
  ca = await createCertificateAuthority();
  cert = await ca.issue('edge', ['edge.test']);
});
t.teardown(() => ca.remove());

async function start(t: Test) {
  const up = await startRecordingUpstream((_req, res) => {
    // Slow enough that a stream reset right after its HEADERS is still in flight upstream.
    setTimeout(() => { res.writeHead(200); res.end('ok'); }, 20);
  });
  const gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug, access: false }
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${cert.cert}, key: ${cert.key} }]
services:
  svc: { discovery: { type: static, endpoints: ["${up.url}"] } }
routes:
  - { match: { path: / }, service: svc }
`);
  t.teardown(async () => { await gw.close(); await up.close(); });
  return { gw, up, port: gw.gateway.tlsAddress()!.port };
}

/** A normal request on a new connection: the gateway still serves. */
async function servesNormally(port: number): Promise<number> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername: 'edge.test', rejectUnauthorized: false });
  session.on('error', () => {});
  try {
    const stream = session.request({ ':path': '/after' });
    const [head] = await once(stream, 'response') as [http2.IncomingHttpHeaders];
    stream.resume();
    await once(stream, 'end');
    return Number(head[':status']);
  } finally {
    session.destroy();
  }
}

t.test('rapid reset (CVE-2023-44487): a connection opening and resetting streams fast is ended with GOAWAY', async (t) => {
  const { up, port } = await start(t);
  const before = retained();
  const raw = await rawHttp2(port, 'edge.test');
  const pairs = 5000;
  // In batches, each HEADERS followed at once by its RST_STREAM (CANCEL): the shape of the attack.
  for (let id = 1; id < pairs * 2 && !raw.socket.destroyed; id += 200) {
    const batch: Buffer[] = [];
    for (let s = id; s < id + 200; s += 2) batch.push(getHeaders(s, 'edge.test'), rstStream(s));
    if (!raw.socket.write(Buffer.concat(batch))) await Promise.race([once(raw.socket, 'drain').catch(() => {}), raw.closed]);
  }
  await raw.closed;
  // nghttp2 refuses the frame past the rate and Node ends the session with GOAWAY INTERNAL_ERROR.
  t.ok(raw.goAway, `GOAWAY (code ${raw.goAway?.code})`);
  // The burst allowed (http2-sessions.ts), not Node's default of 1000: each stream id is odd, two apart.
  t.ok((raw.goAway?.lastStreamId ?? Infinity) < 2 * 2 * STREAM_RESET_BURST, `streams accepted before the GOAWAY: ${((raw.goAway?.lastStreamId ?? 0) + 1) / 2}`);
  t.ok(up.requests.length < pairs / 4, `the upstream saw ${up.requests.length} of ${pairs} streams`);
  t.equal(await servesNormally(port), 200, 'the gateway serves a normal request afterwards');
  bounded(t, before);
});

for (const kind of ['SETTINGS', 'PING'] as const) {
  t.test(`a ${kind} flood from a client that does not read its acknowledgements ends its connection`, async (t) => {
    const { port } = await start(t);
    const before = retained();
    const raw = await rawHttp2(port, 'edge.test');
    await waitFor(() => raw.received.includes(FRAME.SETTINGS), 5000, 'the server\'s SETTINGS');
    raw.socket.pause();
    const one = kind === 'SETTINGS' ? frame(FRAME.SETTINGS, 0, 0) : frame(FRAME.PING, 0, 0, Buffer.alloc(8));
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => one));
    let sent = 0;
    for (; sent < 200_000 && !raw.socket.destroyed; sent += 1000) {
      if (!raw.socket.write(batch)) await Promise.race([once(raw.socket, 'drain').catch(() => {}), raw.closed]);
    }
    raw.socket.resume();
    await raw.closed;
    // Unread acknowledgements pile up in nghttp2's outbound queue until it calls it a flood and ends the session.
    t.ok(sent < 200_000 || raw.goAway?.code === ENHANCE_YOUR_CALM, `ended after ${sent} frames`);
    t.equal(await servesNormally(port), 200, 'the gateway serves a normal request afterwards');
    bounded(t, before);
  });
}

t.test('a protocol error ends its session only: a frame on stream 0 that must not be there', async (t) => {
  const { port } = await start(t);
  const raw = await rawHttp2(port, 'edge.test');
  raw.socket.write(frame(FRAME.DATA, 0, 0, Buffer.from('nope')));
  await raw.closed;
  t.ok(raw.received.includes(FRAME.GOAWAY), 'GOAWAY');
  t.equal(await servesNormally(port), 200);
});
