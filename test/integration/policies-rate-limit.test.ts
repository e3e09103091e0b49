/**
 * rateLimit (docs/policies.md): GCRA per route × key; the IETF RateLimit-Policy / RateLimit fields on every answer
 * (replacing an upstream's), 429 with Retry-After; the limit is the gateway's with --workers 2 (the primary's
 * buckets) and exact across two gateways sharing a real redis-server; Redis hung or killed under load: answers
 * within timeoutMs, following onStoreDown, with a log line and a metric; a limit changed on reload takes effect
 * without resetting the others; a reload that changes the store closes the old client.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { freePort } from '../helpers/free-port.js';
import { spawnGateway, workersReady } from '../helpers/gateway-process.js';
import { metricValue, policyYaml, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const execFileAsync = promisify(execFile);

/** Statuses of `n` requests, each on a new connection (so that --workers spreads them), `parallel` at a time. */
async function statuses(url: string, n: number, parallel = 5, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i += parallel) {
    const batch = await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, async () => {
      const agent = new Agent({ pipelining: 0 });
      try {
        const res = await request(url, { dispatcher: agent, headers });
        await res.body.dump();
        return res.statusCode;
      } finally {
        await agent.close();
      }
    }));
    out.push(...batch);
  }
  return out;
}
const count = (list: readonly number[], status: number) => list.filter((s) => s === status).length;

t.test('GCRA per route × key: exact counts, and 429 with Retry-After, RateLimit-Policy and RateLimit', async (t) => {
  const policies = `  per-ip: { rateLimit: { requests: 3, per: 1h } }
  per-key: { rateLimit: { requests: 2, per: 1h, key: "header:X-Tenant" } }
  partners: { apiKey: { keysFile: keys.txt } }
  per-consumer: { rateLimit: { requests: 1, per: 1h, key: consumer } }`;
  const routes = `  - { name: a, match: { path: /a }, service: svc, policies: [per-ip] }
  - { name: b, match: { path: /b }, service: svc, policies: [per-ip] }
  - { name: t, match: { path: /t }, service: svc, policies: [per-key] }
  - { name: c, match: { path: /c }, service: svc, policies: [partners, per-consumer] }
`;
  const g = await startPolicyGateway(policyYaml(upstream.url, policies, routes), { 'keys.txt': `${sha256('ka')} alpha\n${sha256('kb')} beta\n` });
  t.teardown(() => g.close());
  const before = upstream.requests.length;
  const a4 = await Promise.all([1, 2, 3, 4, 5].map(() => send(`${g.url4}/a`)));
  t.same(a4.map((r) => r.status).sort(), [200, 200, 200, 429, 429], '3 of 5 from 127.0.0.1');
  t.equal(upstream.requests.length - before, 3, 'refused requests never reached the upstream');
  const refused = a4.find((r) => r.status === 429)!;
  const body = refused.json();
  t.equal(body.error, 'GW_ERR_RATE_LIMITED');
  t.equal(body.request_id, refused.headers['x-request-id']);
  t.equal(body.route, 'a');
  // 3 per hour: one more every 1200 s, the bucket full again after 3600 s.
  t.equal(refused.headers['retry-after'], '1200');
  t.equal(refused.headers['ratelimit-policy'], '"per-ip";q=3;w=3600');
  t.match(String(refused.headers.ratelimit), /^"per-ip";r=0;t=(3599|3600)$/);

  t.equal((await send(`${g.url6}/a`)).status, 200, 'another client address: another bucket');
  t.equal((await send(`${g.url4}/b`)).status, 200, 'the same policy on another route: another bucket');

  t.same([(await send(`${g.url4}/t`, { 'x-tenant': 'x' })).status, (await send(`${g.url4}/t`, { 'x-tenant': 'x' })).status,
    (await send(`${g.url4}/t`, { 'x-tenant': 'x' })).status, (await send(`${g.url4}/t`, { 'x-tenant': 'y' })).status], [200, 200, 429, 200], 'per header value');

  t.same([(await send(`${g.url4}/c`, { 'x-api-key': 'ka' })).status, (await send(`${g.url4}/c`, { 'x-api-key': 'ka' })).status,
    (await send(`${g.url4}/c`, { 'x-api-key': 'kb' })).status], [200, 429, 200], 'per consumer, after the key policy named it');
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'per-ip', kind: 'rateLimit', reason: 'limit' }), 2);
});

t.test('RateLimit-Policy and RateLimit on every answer of a limited route, replacing the upstream\'s; untouched elsewhere', async (t) => {
  const own = await startRecordingUpstream((_req, res) => {
    res.writeHead(200, { 'ratelimit-policy': '"upstream";q=1000;w=60', RateLimit: '"upstream";r=999;t=60', 'x-upstream': 'yes' });
    res.end('ok');
  });
  t.teardown(() => own.close());
  const deadPort = await freePort();
  const g = await startPolicyGateway(policyYaml(own.url, `  three: { rateLimit: { requests: 3, per: 1h, key: route } }
  guard: { rateLimit: { requests: 100, per: 1m, key: route } }`, `  - { name: limited, match: { path: /limited }, service: svc, policies: [three] }
  - { name: open, match: { path: /open }, service: svc }
  - { name: dead, match: { path: /dead }, service: dead, policies: [guard] }
`).replace('services:\n', `services:\n  dead:\n    discovery: { type: static, endpoints: ["http://127.0.0.1:${deadPort}"] }\n`));
  t.teardown(() => g.close());

  const open = await send(`${g.url4}/open`);
  t.equal(open.headers['ratelimit-policy'], '"upstream";q=1000;w=60', 'no gateway limit: the upstream\'s fields pass unchanged');
  t.equal(open.headers.ratelimit, '"upstream";r=999;t=60');

  // 3 per hour from a full bucket: one interval is 1200 s, each request takes one and moves the reset one on.
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await send(`${g.url4}/limited`));
  t.same(got.map((r) => r.status), [200, 200, 200, 429]);
  t.same(got.map((r) => r.headers['ratelimit-policy']), Array(4).fill('"three";q=3;w=3600'), 'the gateway\'s policy replaces the upstream\'s');
  t.match(got.map((r) => r.headers.ratelimit), [/^"three";r=2;t=(1199|1200)$/, /^"three";r=1;t=(2399|2400)$/, /^"three";r=0;t=(3599|3600)$/, /^"three";r=0;t=(3599|3600)$/]);
  t.equal(got[0]?.headers['x-upstream'], 'yes', 'the upstream\'s other fields are kept');

  const dead = await send(`${g.url4}/dead`);
  t.equal(dead.status, 502, 'the gateway\'s own error on a limited route');
  t.equal(dead.headers['ratelimit-policy'], '"guard";q=100;w=60');
  t.match(String(dead.headers.ratelimit), /^"guard";r=99;t=1$/);
});

t.test('a limit changed on reload takes effect; the other buckets keep their state', async (t) => {
  const yaml = (aRequests: number) => policyYaml(upstream.url, `  la: { rateLimit: { requests: ${aRequests}, per: 1h } }
  lb: { rateLimit: { requests: 3, per: 1h } }`, `  - { name: a, match: { path: /a }, service: svc, policies: [la] }
  - { name: b, match: { path: /b }, service: svc, policies: [lb] }
`);
  const g = await startPolicyGateway(yaml(2));
  t.teardown(() => g.close());
  t.same(await statuses(`${g.url4}/a`, 3, 1), [200, 200, 429]);
  t.same(await statuses(`${g.url4}/b`, 2, 1), [200, 200]);
  t.equal(await g.reload(yaml(4)), 'applied');
  t.same(await statuses(`${g.url4}/a`, 3, 1), [200, 200, 429], 'la raised to 4: two more, the two used still count');
  t.same(await statuses(`${g.url4}/b`, 2, 1), [200, 429], 'lb kept its bucket: one left of three');
});

t.test('--workers 2: the limit is the gateway\'s, not twice it', async (t) => {
  const yaml = policyYaml(upstream.url, '  ten: { rateLimit: { requests: 10, per: 1h, key: route } }', '  - { name: r, match: { path: / }, service: svc, policies: [ten] }\n');
  const gw = await spawnGateway(yaml, ['--workers', '2']);
  t.teardown(() => gw.kill());
  await workersReady(gw, 2);
  const got = await statuses(`http://127.0.0.1:${gw.port}/`, 40, 8);
  t.equal(count(got, 200), 10, 'exactly 10 allowed');
  t.equal(count(got, 429), 30);
  const workers = await waitFor(() => {
    const ids = new Set(gw.logs.filter((l) => l.log === 'access').map((l) => l.worker));
    return ids.size === 2 ? ids : false;
  }, 5000, 'access lines from both workers');
  t.equal(workers.size, 2, 'both workers served requests');
});

t.test('two gateways sharing a real Redis: exact; Redis hung or killed: answers within timeoutMs, following onStoreDown', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.kill());
  const store = (onStoreDown: string) => `rateLimitStore: { redis: { url: "${redis.url}", timeoutMs: 200 }, onStoreDown: ${onStoreDown} }\n`;
  const yaml = (onStoreDown: string) => policyYaml(upstream.url, '  ten: { rateLimit: { requests: 10, per: 1h, key: route } }',
    '  - { name: r, match: { path: / }, service: svc, policies: [ten] }\n', store(onStoreDown));
  const allow = await startPolicyGateway(yaml('allow'));
  t.teardown(() => allow.close());
  const deny = await startPolicyGateway(yaml('deny'));
  t.teardown(() => deny.close());
  const got = (await Promise.all([statuses(`${allow.url4}/`, 15, 3), statuses(`${deny.url4}/`, 15, 3)])).flat();
  t.equal(count(got, 200), 10, 'exactly 10 allowed over both gateways');
  t.equal(count(got, 429), 20);
  t.equal(await metricValue(allow.adminUrl, 'gantry_rate_limit_store_up', {}), 1);

  /** Every answer of `n` requests per gateway, with the slowest time. */
  const timed = async (n: number) => {
    let slowestMs = 0;
    const one = async (url: string) => {
      const started = performance.now();
      const r = await send(url);
      slowestMs = Math.max(slowestMs, performance.now() - started);
      return r;
    };
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => one(`${i % 2 ? deny.url4 : allow.url4}/`)));
    return { allow: answers.filter((_, i) => i % 2 === 0), deny: answers.filter((_, i) => i % 2 === 1), slowestMs };
  };

  // Hung: connected but silent (SIGSTOP). Each request waits at most timeoutMs, then the breaker skips the store.
  redis.child.kill('SIGSTOP');
  const hung = await timed(10);
  t.same(hung.allow.map((r) => r.status), [200, 200, 200, 200, 200], 'onStoreDown allow: forwarded');
  t.same(hung.deny.map((r) => r.status), [503, 503, 503, 503, 503], 'onStoreDown deny: 503');
  t.equal(hung.deny[0]?.json().error, 'GW_ERR_RATE_LIMIT_UNAVAILABLE');
  t.equal(hung.deny[0]?.headers['retry-after'], '1');
  t.ok(hung.slowestMs < 200 + 1500, `the slowest answer took ${Math.round(hung.slowestMs)} ms: bounded by timeoutMs (200), not by the store`);
  await waitFor(() => allow.logs.some((l) => l.event === 'rate-limit-store-down'), 2000, 'a store-down log line');
  t.equal(await metricValue(allow.adminUrl, 'gantry_rate_limit_store_up', {}), 0);
  t.ok(await metricValue(allow.adminUrl, 'gantry_rate_limit_store_failures_total', {}) >= 5);

  // Killed under load: answers keep coming, none waits on the dead store.
  redis.child.kill('SIGCONT');
  const load = timed(20);
  await redis.kill();
  const killed = await load;
  const after = await timed(10);
  for (const r of [...killed.allow, ...after.allow]) t.ok(r.status === 200 || r.status === 429, `allow gateway: ${r.status}`);
  for (const r of [...killed.deny, ...after.deny]) t.ok(r.status === 503 || r.status === 429, `deny gateway: ${r.status}`);
  t.same(after.allow.map((r) => r.status), [200, 200, 200, 200, 200], 'store dead: allow forwards');
  t.same(after.deny.map((r) => r.status), [503, 503, 503, 503, 503], 'store dead: deny refuses');
  t.ok(Math.max(killed.slowestMs, after.slowestMs) < 200 + 1500, 'bounded by timeoutMs');
});

t.test('a reload that changes the Redis URL or removes the store closes the old client; one that keeps it keeps the connection', async (t) => {
  const [a, b] = await Promise.all([startRedis(), startRedis()]);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  /** A field of the server's INFO, asked with redis-cli (whose own connection counts in it). */
  const info = async (redis: RedisServer, field: string): Promise<number> => {
    const { stdout } = await execFileAsync('redis-cli', ['-p', new URL(redis.url).port, 'info']);
    const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(stdout);
    if (!m) throw new Error(`no ${field} in INFO`);
    return Number(m[1]);
  };
  const gatewayClients = async (redis: RedisServer) => (await info(redis, 'connected_clients')) - 1;
  const yaml = (store: RedisServer | null, requests = 10) => policyYaml(upstream.url, `  ten: { rateLimit: { requests: ${requests}, per: 1h, key: route } }`,
    '  - { name: r, match: { path: / }, service: svc, policies: [ten] }\n', store ? `rateLimitStore: { redis: { url: "${store.url}", timeoutMs: 200 } }\n` : '');
  const g = await startPolicyGateway(yaml(a));
  t.teardown(() => g.close());
  t.equal((await send(`${g.url4}/`)).status, 200);
  t.equal(await gatewayClients(a), 1, 'the gateway\'s client on A');

  const received = await info(a, 'total_connections_received');
  t.equal(await g.reload(yaml(a, 20)), 'applied');
  t.equal((await send(`${g.url4}/`)).status, 200);
  t.equal(await info(a, 'total_connections_received'), received + 1, 'same URL: no new connection (only redis-cli\'s)');
  t.equal(await gatewayClients(a), 1);

  t.equal(await g.reload(yaml(b, 20)), 'applied');
  t.equal((await send(`${g.url4}/`)).status, 200);
  t.equal(await gatewayClients(b), 1, 'the new client on B');
  await waitFor(async () => (await gatewayClients(a)) === 0, 5000, 'the client on A closed');

  t.equal(await g.reload(yaml(null, 20)), 'applied');
  t.equal((await send(`${g.url4}/`)).status, 200);
  await waitFor(async () => (await gatewayClients(b)) === 0, 5000, 'the client on B closed once the store is gone');
});
