/**
 * Canary splits (docs/routing.md, "Canary splits"): a route's requests shared between services by weight, exact over
 * 10 000 requests; sticky by cookie or header when asked; each service's metrics count its own share; a reload
 * changes the weights without dropping a request in flight; bad splits refused at load with file:line:col.
 */
import { request, Agent } from 'undici';
import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { metricValue, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

function yaml(v1: RecordingUpstream, v2: RecordingUpstream, split: string, sticky = ''): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
services:
  api-v1: { discovery: { type: static, endpoints: ["${v1.url}"] } }
  api-v2: { discovery: { type: static, endpoints: ["${v2.url}"] } }
routes:
  - { name: api, match: { path: /api }, split: ${split}${sticky} }
`;
}

const v1 = await startRecordingUpstream();
const v2 = await startRecordingUpstream();
t.teardown(() => Promise.all([v1.close(), v2.close()]));

t.test('a 90/10 split over 10 000 requests: each service gets its share, and counts it in its own metrics', { timeout: 180_000 }, async (t) => {
  const g = await startPolicyGateway(yaml(v1, v2, '[{ service: api-v1, weight: 90 }, { service: api-v2, weight: 10 }]'));
  t.teardown(() => g.close());
  const before = [v1.requests.length, v2.requests.length];
  const agent = new Agent({ connections: 8 });
  t.teardown(() => agent.close());
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < 10_000) {
      next++;
      const res = await request(`${g.url4}/api/x`, { dispatcher: agent });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const got = [v1.requests.length - (before[0] as number), v2.requests.length - (before[1] as number)];
  t.comment(`api-v1 ${got[0]}, api-v2 ${got[1]}`);
  t.ok(Math.abs((got[0] as number) - 9000) <= 100 && Math.abs((got[1] as number) - 1000) <= 100, `90/10 within 1 % (${got.join('/')})`);
  t.equal((got[0] as number) + (got[1] as number), 10_000);
  t.equal(await metricValue(g.adminUrl, 'gantry_requests_total', { route: 'api', service: 'api-v1', status_class: '2xx' }), got[0], 'api-v1 counts its share');
  t.equal(await metricValue(g.adminUrl, 'gantry_requests_total', { route: 'api', service: 'api-v2', status_class: '2xx' }), got[1], 'api-v2 counts its share');
});

t.test('stickyBy: a cookie (or header) value keeps its side; requests without one are spread by weight', async (t) => {
  const g = await startPolicyGateway(yaml(v1, v2, '[{ service: api-v1, weight: 50 }, { service: api-v2, weight: 50 }]', ', stickyBy: "cookie:canary"'));
  t.teardown(() => g.close());
  const sideOf = async (headers: Record<string, string>): Promise<number> => {
    const a = [v1.requests.length, v2.requests.length];
    await send(`${g.url4}/api/x`, headers);
    return v1.requests.length > (a[0] as number) ? 1 : 2;
  };
  const sides = [0, 0];
  for (let user = 0; user < 60; user++) {
    const cookie = { cookie: `session=s${user}; canary=user-${user}` };
    const first = await sideOf(cookie);
    sides[first - 1]!++;
    for (let i = 0; i < 3; i++) t.equal(await sideOf(cookie), first, `user-${user} stays on api-v${first}`);
  }
  t.ok((sides[0] as number) > 10 && (sides[1] as number) > 10, `both sides get sticky users (${sides.join('/')})`);
  const spread = [await sideOf({}), await sideOf({})].sort();
  t.same(spread, [1, 2], 'without the cookie, 50/50 alternates');
});

t.test('a reload changes the weights; a request in flight on the old split finishes', async (t) => {
  const slow = await startRecordingUpstream((_req, res) => setTimeout(() => { res.writeHead(200); res.end('slow'); }, 300));
  t.teardown(() => slow.close());
  const g = await startPolicyGateway(yaml(slow, v2, '[{ service: api-v1, weight: 1 }, { service: api-v2, weight: 0 }]'));
  t.teardown(() => g.close());
  const inFlight = send(`${g.url4}/api/slow`);
  await new Promise<void>((resolve) => { const check = (): void => { if (slow.requests.length > 0) resolve(); else setTimeout(check, 5); }; check(); });
  t.equal(await g.reload(yaml(slow, v2, '[{ service: api-v1, weight: 0 }, { service: api-v2, weight: 1 }]')), 'applied');
  const after = v2.requests.length;
  t.equal((await send(`${g.url4}/api/x`)).status, 200);
  t.equal(v2.requests.length, after + 1, 'the new weights send it to api-v2');
  const old = await inFlight;
  t.equal(old.status, 200, 'the request in flight on the old split finished');
  t.equal(old.text, 'slow');
});

t.test('bad splits are refused at load, at file:line:col', async (t) => {
  const head = `services:
  a: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
  b: { discovery: { type: static, endpoints: ["http://127.0.0.1:2"] } }
routes:
`;
  t.same(configProblems(`${head}  - { match: { path: /1 }, service: a, split: [{ service: a, weight: 1 }, { service: b, weight: 1 }] }
  - { match: { path: /2 }, split: [{ service: a, weight: 1 }, { service: nope, weight: 1 }] }
  - { match: { path: /3 }, split: [{ service: a, weight: 0 }, { service: b, weight: 0 }] }
  - { match: { path: /4 }, split: [{ service: a, weight: 1 }, { service: a, weight: 2 }] }
  - { match: { path: /5 }, service: a, stickyBy: "cookie:canary" }
  - { match: { path: /6 } }
`), [
    'routes.yaml:5:47: routes[0].split: use service or split, not both',
    'routes.yaml:6:74: routes[1].split[1].service: unknown service "nope" (defined: a, b)',
    'routes.yaml:7:35: routes[2].split: at least one side needs a weight above 0',
    'routes.yaml:8:74: routes[3].split[1].service: "a" is already a side of this split',
    'routes.yaml:9:50: routes[4].stickyBy: stickyBy needs a split',
    'routes.yaml:10:5: routes[5]: a route needs a service (or a split)',
  ]);
  t.same(configProblems(`${head}  - { match: { path: /7 }, split: [{ service: a, weight: 1 }, { service: b, weight: 1 }], stickyBy: "ip" }
  - { match: { path: /8 }, split: [{ service: a, weight: 1 }] }
`), [
    "routes.yaml:5:101: routes[0].stickyBy: must match ^(cookie|header):[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
    'routes.yaml:6:35: routes[1].split: must NOT have fewer than 2 items',
  ]);
});
