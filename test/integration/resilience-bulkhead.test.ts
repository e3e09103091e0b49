import http from 'node:http';
import t, { type Test } from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

interface Answer { status: number; error?: string; retryAfter?: string; requestId?: string; body: string }

/** A request that resolves with the whole answer; `cut` destroys it early (the client leaves). */
function request(port: number, path: string): { answer: Promise<Answer>; cut(): void } {
  let req: http.ClientRequest;
  const answer = new Promise<Answer>((resolve, reject) => {
    req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => {
        let error: string | undefined;
        try { error = (JSON.parse(body) as { error?: string }).error; } catch { /* an upstream's body */ }
        resolve({ status: res.statusCode ?? 0, error, retryAfter: res.headers['retry-after'] as string | undefined, requestId: res.headers['x-request-id'] as string | undefined, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { answer, cut: () => req.destroy() };
}

/**
 * An upstream that holds every answer until the test ends it (/stream first sends its head and half its body), and
 * a gateway in front of it whose service `svc` has this bulkhead and no retries.
 */
async function setUp(t: Test, bulkhead: string, routes = '  - { match: { path: / }, service: svc }\n') {
  const held = new Map<string, http.ServerResponse>();
  const up = await startRecordingUpstream((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-length': '4' });
      res.write('ab');
    }
    held.set(req.url as string, res);
  });
  t.teardown(() => up.close());
  const gw = await startGateway(`listen: 127.0.0.1:0
log: { level: info, access: false }
services:
  svc:
    discovery: { type: static, endpoints: ["${up.url}"] }
    retry: { attempts: 0 }
    bulkhead: ${bulkhead}
routes:
${routes}`);
  t.teardown(() => gw.close());
  return { held, port: gw.port, arrived: () => up.requests.map((r) => r.url) };
}

t.test('bulkhead: maxConcurrent run, maxQueue wait in order, the rest get 503 GW_ERR_OVERLOADED at once; a slot is held until the response body ends', async (t) => {
  const { held, port, arrived } = await setUp(t, '{ maxConcurrent: 2, maxQueue: 1 }');

  const a = request(port, '/a');
  const stream = request(port, '/stream');
  await waitFor(() => held.size === 2, 5000, 'two requests upstream');
  const queued = request(port, '/queued');
  const over = await request(port, '/over').answer;
  t.equal(over.status, 503, 'past maxConcurrent + maxQueue: 503');
  t.equal(over.error, 'GW_ERR_OVERLOADED');
  t.equal(over.retryAfter, '1');
  t.ok(over.requestId, 'with a request id');
  t.same(arrived(), ['/a', '/stream'], 'the queued and the refused ones did not reach the upstream');

  // The streaming answer's head and half its body are out: its slot is still held.
  held.get('/a')?.end('A');
  const answerA = await a.answer;
  t.equal(answerA.status, 200);
  t.equal(answerA.body, 'A');
  await waitFor(() => held.has('/queued'), 5000, 'the queued request upstream');
  const waiting = request(port, '/waiting');
  const over2 = await request(port, '/over2').answer;
  t.equal(over2.error, 'GW_ERR_OVERLOADED', 'a streaming response holds its slot until its body ends');
  t.notOk(held.has('/waiting'), 'the next one waits for it');
  held.get('/stream')?.end('cd');
  t.equal((await stream.answer).body, 'abcd');
  await waitFor(() => held.has('/waiting'), 5000, 'the waiting request upstream once the stream ended');
  held.get('/queued')?.end('Q');
  held.get('/waiting')?.end('W');
  t.equal((await queued.answer).body, 'Q', 'the queued request was served');
  t.equal((await waiting.answer).body, 'W');

  // Every slot is free again: two at once run, and a third waits.
  const b = request(port, '/b');
  const c = request(port, '/c');
  await waitFor(() => held.has('/b') && held.has('/c'), 5000, 'b and c upstream');
  held.get('/b')?.end('B');
  held.get('/c')?.end('C');
  t.same([(await b.answer).body, (await c.answer).body], ['B', 'C']);
  t.same(arrived(), ['/a', '/stream', '/queued', '/waiting', '/b', '/c']);
});

t.test('bulkhead: a queued request whose client left gives its turn to the next one', async (t) => {
  const { held, port, arrived } = await setUp(t, '{ maxConcurrent: 1, maxQueue: 2 }');

  const first = request(port, '/first');
  await waitFor(() => held.has('/first'), 5000, 'the first upstream');
  const gone = request(port, '/gone');
  gone.answer.catch(() => {});
  const next = request(port, '/next');
  await new Promise((r) => setTimeout(r, 50));   // both queued behind /first
  gone.cut();
  await new Promise((r) => setTimeout(r, 50));
  held.get('/first')?.end('1');
  t.equal((await first.answer).body, '1');
  await waitFor(() => held.has('/next'), 5000, 'the next upstream');
  held.get('/next')?.end('N');
  t.equal((await next.answer).body, 'N');
  t.same(arrived(), ['/first', '/next'], 'the request whose client left never reached the upstream');
});

t.test('bulkhead: a queued request answered 504 by its deadline does not take a slot when its turn comes', async (t) => {
  const { held, port, arrived } = await setUp(t, '{ maxConcurrent: 1, maxQueue: 1 }', `  - { match: { path: /slow }, service: svc, timeoutMs: 60000 }
  - { match: { path: /quick }, service: svc, timeoutMs: 300 }
`);

  const first = request(port, '/slow');
  await waitFor(() => held.has('/slow'), 5000, 'the first upstream');
  const late = await request(port, '/quick').answer;
  t.equal(late.status, 504, 'the deadline spans the wait in the queue');
  t.equal(late.error, 'GW_ERR_UPSTREAM_TIMEOUT');
  held.get('/slow')?.end('S');
  t.equal((await first.answer).body, 'S');
  const after = request(port, '/slow/again');
  await waitFor(() => held.has('/slow/again'), 5000, 'the next request upstream');
  held.get('/slow/again')?.end('A');
  t.equal((await after.answer).body, 'A', 'the slot was free');
  t.same(arrived(), ['/slow', '/slow/again'], 'the timed-out request never reached the upstream');
});
