import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { routesYaml, startGateway } from '../helpers/gateway-under-test.js';
import { listenOnLoopback } from '../helpers/listen-loopback.js';

// A body larger than every buffer on the way (the sockets' kernel buffers, undici's, Node's) moves at the pace of its
// slowest reader: a gateway that reads faster than it can write would hold the difference in memory.

const CHUNK = 1 << 20;
const TOTAL_CHUNKS = 128;   // 128 MiB
const PAUSE_MS = 1500;

/** Chunk i of the body: 1 MiB of one byte value that changes per chunk, so a lost or reordered chunk shows in the hash. */
const chunk = (i: number): Buffer => Buffer.alloc(CHUNK, i % 251);
const expectedHash = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < TOTAL_CHUNKS; i++) h.update(chunk(i));
  return h.digest('hex');
})();

/** Writes the body to `out` as fast as `out` takes it (waiting for 'drain'); `sent()` counts the bytes handed over. */
function pump(out: NodeJS.WritableStream & { end(): void }) {
  let sent = 0;
  const done = (async () => {
    for (let i = 0; i < TOTAL_CHUNKS; i++) {
      sent += CHUNK;
      if (!out.write(chunk(i))) await once(out, 'drain');
    }
    out.end();
  })();
  return { sent: () => sent, done };
}

/** Reads a stream to its end: its length and sha256. */
async function digest(stream: NodeJS.ReadableStream): Promise<{ bytes: number; hash: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) { h.update(c as Buffer); bytes += (c as Buffer).length; }
  return { bytes, hash: h.digest('hex') };
}

t.test('a client that does not read holds the upstream back, and then gets the whole body', async (t) => {
  let pumped: ReturnType<typeof pump> | undefined;
  const up = await listenOnLoopback(http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(CHUNK * TOTAL_CHUNKS) });
    pumped = pump(res);
  }));
  t.teardown(() => up.close());
  const gw = await startGateway(routesYaml([up.url]));
  t.teardown(() => gw.close());

  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: gw.port, path: '/big', agent: false }, resolve).on('error', reject);
  });
  res.pause();
  t.equal(res.statusCode, 200);
  await sleep(PAUSE_MS);
  const held = pumped!.sent();
  t.ok(held < (CHUNK * TOTAL_CHUNKS) / 2, `while the client read nothing the upstream could hand over ${(held / CHUNK).toFixed(0)} MiB of ${TOTAL_CHUNKS}`);
  const got = await digest(res);
  await pumped!.done;
  t.equal(got.bytes, CHUNK * TOTAL_CHUNKS, 'every byte arrived');
  t.equal(got.hash, expectedHash, 'in order and unchanged');
});

t.test('an upstream that does not read holds the client\'s upload back, and then gets the whole body', async (t) => {
  // The upstream takes the request and reads nothing of its body until the test says so.
  let held: { req: http.IncomingMessage; res: http.ServerResponse } | undefined;
  const up = await listenOnLoopback(http.createServer((req, res) => { held = { req, res }; }));
  t.teardown(() => up.close());
  // The upstream answers only once it has read all 128 MiB: on a loaded machine that can take longer than the default
  // per-try timeout (a third of 15 s), which is not what this test is about.
  const gw = await startGateway(routesYaml([up.url], `  - match: { path: / }\n    service: svc\n    maxBodyBytes: ${CHUNK * TOTAL_CHUNKS}\n    timeoutMs: 120000\n`));
  t.teardown(() => gw.close());

  // Chunked: a body of unknown length is streamed once, not buffered for a retry.
  const req = http.request({ host: '127.0.0.1', port: gw.port, path: '/upload', method: 'POST', agent: false });
  const answer = new Promise<http.IncomingMessage>((resolve, reject) => { req.on('response', resolve); req.on('error', reject); });
  const pumped = pump(req);
  await waitFor(() => held !== undefined, 5000, 'the upload upstream');
  await sleep(PAUSE_MS);
  const sent = pumped.sent();
  t.ok(sent < (CHUNK * TOTAL_CHUNKS) / 2, `while the upstream read nothing the client could hand over ${(sent / CHUNK).toFixed(0)} MiB of ${TOTAL_CHUNKS}`);
  const got = await digest(held!.req);
  held!.res.end('done');
  await pumped.done;
  t.equal(got.bytes, CHUNK * TOTAL_CHUNKS, 'every byte arrived');
  t.equal(got.hash, expectedHash, 'in order and unchanged');
  const res = await answer;
  t.equal(res.statusCode, 200);
  t.equal((await digest(res)).bytes, 4, "the upstream's answer came back");
});
