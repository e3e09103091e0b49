/**
 * compress (docs/policies.md): br or gzip by Accept-Encoding, only for answers the upstream did not compress, of a
 * listed type and large enough; decoded by curl --compressed to the upstream's bytes; streamed with backpressure, so
 * a client that reads slowly holds the upstream back instead of filling the gateway's memory.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, gzipSync } from 'node:zlib';
import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { policyYaml, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const run = promisify(execFile);
const POLICIES = `  squeeze: { compress: { types: [text/*, application/json], minBytes: 1024 } }`;
const ROUTES = `  - { name: squeezed, match: { path: / }, service: svc, policies: [squeeze] }
`;

// Text that compresses (repeated words with numbers), 300 KiB.
const BODY = Buffer.from(Array.from({ length: 20000 }, (_, i) => `{"item":${i},"name":"widget-${i % 97}"}`).join('\n'));

const upstream = await startRecordingUpstream((req, res) => {
  const path = req.url ?? '';
  if (path === '/json') { res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"' }); res.end(BODY); return; }
  if (path === '/chunked') { res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }); res.write(BODY.subarray(0, 1000)); res.end(BODY.subarray(1000)); return; }
  if (path === '/small') { res.writeHead(200, { 'content-type': 'application/json', 'content-length': '10' }); res.end('0123456789'); return; }
  if (path === '/png') { res.writeHead(200, { 'content-type': 'image/png' }); res.end(BODY); return; }
  if (path === '/gzipped') { res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }); res.end(gzipSync(BODY)); return; }
  if (path === '/no-transform') { res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-transform' }); res.end(BODY); return; }
  res.writeHead(204);
  res.end();
});
t.teardown(() => upstream.close());

async function curl(url: string, args: string[], dir: string): Promise<{ head: string; body: Buffer }> {
  const out = join(dir, 'body');
  const head = join(dir, 'head');
  await run('curl', ['-sS', '--max-time', '30', '-o', out, '-D', head, ...args, url]);
  return { head: (await readFile(head, 'latin1')).toLowerCase(), body: await readFile(out) };
}

t.test('curl --compressed gets br or gzip as it asks, byte-identical after decoding, with Vary and a weak ETag', async (t) => {
  const g = await startPolicyGateway(policyYaml(upstream.url, POLICIES, ROUTES));
  t.teardown(() => g.close());
  for (const [accept, encoding] of [['br, gzip', 'br'], ['gzip', 'gzip'], ['gzip;q=1, br;q=0.5', 'gzip'], ['br;q=0, gzip', 'gzip']]) {
    for (const path of ['/json', '/chunked']) {
      const r = await curl(`${g.url4}${path}`, ['--compressed', '-H', `accept-encoding: ${accept}`], g.dir);
      t.match(r.head, new RegExp(`\\ncontent-encoding: ${encoding}\\r`), `${accept} ${path}: ${encoding}`);
      t.match(r.head, /\nvary: accept-encoding\r/);
      t.notMatch(r.head, /\ncontent-length:/, 'the length is not known ahead');
      t.ok(r.body.equals(BODY), `${accept} ${path}: decoded, the upstream's bytes`);
      if (path === '/json') t.match(r.head, /\netag: w\/"v1"\r/, 'the ETag is weakened');
    }
  }
});

t.test('no compression unless the client accepts, the upstream did not, the type matches and the body is large enough', async (t) => {
  const g = await startPolicyGateway(policyYaml(upstream.url, POLICIES, ROUTES));
  t.teardown(() => g.close());
  const plain = await send(`${g.url4}/json`);
  t.equal(plain.headers['content-encoding'], undefined, 'no Accept-Encoding');
  t.equal(plain.headers.vary, 'Accept-Encoding', 'a cache still learns the answer varies');
  t.equal(plain.text, BODY.toString());
  t.equal(plain.headers.etag, '"v1"', 'an unchanged body keeps its strong ETag');
  const identity = await send(`${g.url4}/json`, { 'accept-encoding': 'identity, br;q=0, gzip;q=0' });
  t.equal(identity.headers['content-encoding'], undefined, 'q=0 refuses an encoding');
  for (const [path, why] of [['/small', 'under minBytes'], ['/png', 'a type not listed'], ['/gzipped', 'the upstream compressed it'], ['/no-transform', 'Cache-Control: no-transform']] as const) {
    const r = await curl(`${g.url4}${path}`, ['-H', 'accept-encoding: br, gzip'], g.dir);
    t.notMatch(r.head, path === '/gzipped' ? /\ncontent-encoding: br/ : /\ncontent-encoding:/, why);
    if (path === '/gzipped') t.ok(r.body.equals(gzipSync(BODY)), 'the upstream\'s gzip passes as it is');
    if (path === '/small') t.match(r.head, /\ncontent-length: 10\r/);
  }
  const empty = await curl(`${g.url4}/empty`, ['-H', 'accept-encoding: gzip'], g.dir);
  t.match(empty.head, /^http\/1\.1 204/);
  t.notMatch(empty.head, /\ncontent-encoding:/, 'a 204 has no body to compress');
  const head = await curl(`${g.url4}/json`, ['-I', '-H', 'accept-encoding: gzip'], g.dir);
  t.notMatch(head.head, /\ncontent-encoding:/, 'HEAD: no body');
});

t.test('a 100 MiB answer to a client that reads slowly: the upstream is held back, the gateway buffers a bounded amount', { timeout: 180_000 }, async (t) => {
  const MIB = 1024 * 1024;
  const TOTAL_MIB = 100;
  // Random hex compresses about 2:1 under gzip: the client's socket buffers hold little of the body.
  const chunk = Buffer.from(randomBytes(MIB / 2).toString('hex'));
  let sent = 0;
  let decoded = 0;
  let maxAhead = 0;
  const big = await startRecordingUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const write = (): void => {
      while (sent < TOTAL_MIB * MIB) {
        sent += chunk.length;
        maxAhead = Math.max(maxAhead, sent - decoded);
        if (!res.write(chunk)) { res.once('drain', write); return; }
      }
      res.end();
    };
    write();
  });
  t.teardown(() => big.close());
  const g = await startPolicyGateway(policyYaml(big.url, POLICIES, ROUTES));
  t.teardown(() => g.close());

  const hash = createHash('sha256');
  const expected = createHash('sha256');
  for (let i = 0; i < TOTAL_MIB; i++) expected.update(chunk);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${g.url4}/big`, { headers: { 'accept-encoding': 'gzip' } }, resolve).on('error', reject);
  });
  t.equal(res.headers['content-encoding'], 'gzip');
  let sinceRest = 0;
  // The slow reader: a rest of 50 ms after every 2 MiB it decodes (at most 40 MiB/s, far below loopback).
  const slow = new Writable({
    highWaterMark: 64 * 1024,
    write(data: Buffer, _enc, done) {
      hash.update(data);
      decoded += data.length;
      sinceRest += data.length;
      if (sinceRest < 2 * MIB) return done();
      sinceRest = 0;
      setTimeout(done, 50);
    },
  });
  await pipeline(res, createGunzip(), slow);
  t.equal(decoded, TOTAL_MIB * MIB, 'every byte arrived');
  t.equal(hash.digest('hex'), expected.digest('hex'), 'decoded, the upstream\'s bytes');
  t.comment(`the upstream was at most ${(maxAhead / MIB).toFixed(1)} MiB ahead of what the client had decoded`);
  t.ok(maxAhead < 40 * MIB, `the upstream stays within 40 MiB of the reader (${(maxAhead / MIB).toFixed(1)} MiB)`);
});

t.test('a streamed answer (server-sent events) is compressed and still arrives as it is written: each burst is flushed', async (t) => {
  let release: (() => void) | undefined;
  const ended = new Promise<void>((resolve) => { release = resolve; });
  const events = await startRecordingUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: first\n\n');
    // The rest only after the client has shown it decoded the first event.
    void ended.then(() => res.end('data: last\n\n'));
  });
  t.teardown(() => events.close());
  const g = await startPolicyGateway(policyYaml(events.url, POLICIES, ROUTES));
  t.teardown(() => g.close());
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${g.url4}/events`, { headers: { 'accept-encoding': 'gzip' } }, resolve).on('error', reject);
  });
  t.equal(res.headers['content-encoding'], 'gzip', 'compressed (text/* is listed)');
  const gunzip = res.pipe(createGunzip());
  let text = '';
  gunzip.on('data', (d: Buffer) => { text += d.toString(); });
  const first = await Promise.race([
    new Promise<boolean>((resolve) => { const check = () => (text.includes('data: first') ? resolve(true) : gunzip.once('data', check)); check(); }),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
  ]);
  t.ok(first, 'the first event decoded while the upstream still holds the stream open');
  release?.();
  await new Promise((resolve) => gunzip.on('end', resolve));
  t.equal(text, 'data: first\n\ndata: last\n\n', 'the whole stream, decoded');
});

t.test('compress options that are not media types are refused at load, at file:line:col', async (t) => {
  t.same(configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  a: { compress: { types: [json, "*/*", text/html], minBytes: -1 } }
routes:
  - { match: { path: / }, service: svc, policies: [a] }
`), [
    'routes.yaml:4:63: policies.a.compress.minBytes: must be >= 0',
  ]);
  t.same(configProblems(`services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
policies:
  a: { compress: { types: [json, "*/*", text/html] } }
routes:
  - { match: { path: / }, service: svc, policies: [a] }
`), [
    'routes.yaml:4:28: policies.a.compress.types[0]: "json" is not a media type (type/subtype, or type/* for a family)',
    'routes.yaml:4:34: policies.a.compress.types[1]: "*/*" is not a media type (type/subtype, or type/* for a family)',
  ]);
});
