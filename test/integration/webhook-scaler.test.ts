import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { validatePluginOptions } from '../../gateway/config/schema-validator.js';
import { pluginContext, type LoadReport } from '../../gateway/plugin-api/index.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, webhookScaler } from '../../plugins/scaling/webhook.js';
import { captureLogger } from '../helpers/capture-logger.js';

const SECRET = 'a-long-shared-secret-for-tests';
const REPORT = { at: 1_700_000_000_000, current: 2, reason: 'demand: 2 → 4', readyEndpoints: 2, waiting: 0, resources: null, stable: {}, panic: {} } as unknown as LoadReport;

interface Received { method: string; url: string; headers: http.IncomingHttpHeaders; body: string; valid: boolean }

/** A real HTTP receiver that checks the signature the way a user's hook would, and answers as told. */
async function receiver(t: { teardown(fn: () => unknown): void }, answer: (r: Received, n: number) => [number, string] | 'hang') {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const ts = String(req.headers[TIMESTAMP_HEADER] ?? '');
      const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`);
      const given = Buffer.from(String(req.headers[SIGNATURE_HEADER] ?? ''));
      const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, valid: fresh && given.length === expected.length && timingSafeEqual(given, expected) };
      received.push(r);
      if (!r.valid) { res.writeHead(401).end('bad signature'); return; }
      const a = answer(r, received.length);
      if (a === 'hang') return;
      res.writeHead(a[0], { 'content-type': 'application/json' }).end(a[1]);
    });
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

function create(options: Record<string, unknown>) {
  const problems = validatePluginOptions(webhookScaler.optionsSchema, options, []);
  if (problems.length) throw new Error(JSON.stringify(problems));
  return webhookScaler.create(options as never, pluginContext(captureLogger().log, new AbortController().signal, Date.now, process.cwd()));
}

t.test('POSTs the signed decision and reads the count with a signed GET', async (t) => {
  const hook = await receiver(t, (r) => (r.method === 'GET' ? [200, '{"replicas":3}'] : [202, '{}']));
  process.env.GANTRY_TEST_HOOK_SECRET = SECRET;
  const scaler = create({ url: `${hook.url}/scale`, secretEnv: 'GANTRY_TEST_HOOK_SECRET', headers: { 'x-team': 'edge' } });
  t.equal(await scaler.currentReplicas('web', AbortSignal.timeout(3000)), 3);
  await scaler.scale('web', 4, REPORT, AbortSignal.timeout(3000));
  const [get, post] = hook.received;
  t.equal(get?.url, '/scale?service=web');
  t.ok(get?.valid, 'GET signed');
  t.equal(post?.method, 'POST');
  t.ok(post?.valid, 'POST signed: the receiver verified the HMAC');
  t.equal(post?.headers['content-type'], 'application/json');
  t.equal(post?.headers['x-team'], 'edge');
  t.equal(post?.headers['idempotency-key'], 'web-1700000000000-4');
  const body = JSON.parse(post?.body ?? '{}') as Record<string, unknown>;
  t.same([body.service, body.current, body.desired, body.reason], ['web', 2, 4, 'demand: 2 → 4']);
  t.ok(body.signals, 'with the signals');
});

t.test('retries 5xx and network trouble with the same idempotency key; 4xx is final', async (t) => {
  const hook = await receiver(t, (_r, n) => (n < 3 ? [503, 'busy'] : [200, '{}']));
  const scaler = create({ url: `${hook.url}/scale`, secret: SECRET, retry: { attempts: 2, initialMs: 10, maxMs: 20 } });
  await scaler.scale('web', 4, REPORT, AbortSignal.timeout(3000));
  t.equal(hook.received.length, 3, 'two retries');
  t.equal(new Set(hook.received.map((r) => r.headers['idempotency-key'])).size, 1, 'one key for the decision');

  const wrong = create({ url: `${hook.url}/scale`, secret: 'not-the-right-secret-at-all', retry: { attempts: 3, initialMs: 10, maxMs: 20 } });
  const before = hook.received.length;
  await t.rejects(wrong.scale('web', 4, REPORT, AbortSignal.timeout(3000)), /HTTP 401: bad signature/);
  t.equal(hook.received.length - before, 1, 'a refused signature is not retried');

  const down = create({ url: 'http://127.0.0.1:1/scale', secret: SECRET, retry: { attempts: 1, initialMs: 10, maxMs: 20 } });
  await t.rejects(down.currentReplicas('web', AbortSignal.timeout(3000)), /fetch failed/);
  const bad = await receiver(t, () => [200, '{"count": 2}']);
  await t.rejects(create({ url: bad.url, secret: SECRET }).currentReplicas('web', AbortSignal.timeout(3000)), /no integer "replicas"/);
});

t.test('a hook that hangs: each attempt times out, the whole call ends with the caller\'s signal', async (t) => {
  const hook = await receiver(t, () => 'hang');
  const scaler = create({ url: hook.url, secret: SECRET, timeoutMs: 150, retry: { attempts: 1, initialMs: 10, maxMs: 10 } });
  const started = Date.now();
  await t.rejects(scaler.scale('web', 2, REPORT, AbortSignal.timeout(3000)));
  t.equal(hook.received.length, 2, 'first try and one retry, each cut at 150 ms');
  t.ok(Date.now() - started < 1000);
  const patient = create({ url: hook.url, secret: SECRET, timeoutMs: 5000, retry: { attempts: 5, initialMs: 10, maxMs: 10 } });
  const s2 = Date.now();
  await t.rejects(patient.scale('web', 2, REPORT, AbortSignal.timeout(200)));
  t.ok(Date.now() - s2 < 1000, 'the loop\'s deadline wins over the retries');
});
