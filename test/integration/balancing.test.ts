import http from 'node:http';
import t, { type Test } from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { routesYaml, startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';
import { requestOnNewConnection } from '../helpers/get-new-connection.js';
import { listenOnLoopback } from '../helpers/listen-loopback.js';

// The balancers through the whole gateway, with real upstreams: what a user configures in routes.yaml reaches the
// balancer (hashOn's key, static weights, in-flight counts). test/unit/balancers.test.ts covers the picks themselves.

interface Answer { status: number; body: string }

/** GET / with these headers, from `localAddress` (any 127.x.y.z: Linux routes all of 127/8 to loopback). */
const get = (port: number, headers: http.OutgoingHttpHeaders = {}, localAddress?: string): Promise<Answer> =>
  requestOnNewConnection(port, '/', { headers, localAddress });

type Endpoint = Parameters<typeof routesYaml>[0][number];

/** `count` counting upstreams and a gateway whose service `svc` has them (or `endpoints(ups)`) and these settings. */
async function setUp(t: Test, count: number, service: string, endpoints?: (ups: CountingUpstream[]) => Endpoint[]): Promise<{ ups: CountingUpstream[]; gw: GatewayUnderTest }> {
  const ups: CountingUpstream[] = [];
  for (let i = 0; i < count; i++) ups.push(await startCountingUpstream());
  t.teardown(() => Promise.all(ups.map((u) => u.close())));
  const gw = await startGateway(routesYaml(endpoints ? endpoints(ups) : ups.map((u) => u.address), undefined, service));
  t.teardown(() => gw.close());
  return { ups, gw };
}

/** Which upstream answered each key, asking `times` times per key; fails the test when a key moved between asks. */
async function owners(t: Test, keys: readonly string[], times: number, ask: (key: string) => Promise<Answer>): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  for (let round = 0; round < times; round++) {
    for (const key of keys) {
      const a = await ask(key);
      t.equal(a.status, 200, `${key} answered`);
      const before = seen.get(key);
      if (before !== undefined && before !== a.body) t.fail(`${key} moved from ${before} to ${a.body}`);
      seen.set(key, a.body);
    }
  }
  return seen;
}

const KEYS = Array.from({ length: 24 }, (_, i) => `user-${i}`);

t.test('consistent-hash on a header keeps each key on one endpoint and spreads the keys', async (t) => {
  // The name in routes.yaml is matched case-insensitively, as HTTP header names are.
  const { ups, gw } = await setUp(t, 3, '    balancer: consistent-hash\n    hashOn: header:X-User-Id\n');
  const byKey = await owners(t, KEYS, 3, (key) => get(gw.port, { 'x-user-id': key }));
  const used = new Set(byKey.values());
  t.ok(used.size >= 2, `24 keys over 3 endpoints use more than one (used ${used.size})`);
  t.ok([...used].every((a) => ups.some((u) => u.address === a)), 'every answer came from a configured endpoint');

  // Without the header the request is still served (spread at random).
  t.equal((await get(gw.port)).status, 200);

  // An owner that stops: its keys go to the next endpoint on the ring (a retry, then its open circuit) and every
  // other key stays where it was.
  const counts = new Map<string, number>();
  for (const a of byKey.values()) counts.set(a, (counts.get(a) ?? 0) + 1);
  const gone = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  await ups.find((u) => u.address === gone)!.close();
  const moved = new Map<string, string>();
  for (const key of KEYS) {
    const a = await get(gw.port, { 'x-user-id': key });
    t.equal(a.status, 200, `${key} answered after its owner stopped`);
    if (byKey.get(key) === gone) moved.set(key, a.body);
    else t.equal(a.body, byKey.get(key), `${key} stayed on ${byKey.get(key)}`);
  }
  t.ok(moved.size > 0, `the stopped endpoint owned ${moved.size} keys`);
  for (const [key, to] of moved) t.equal((await get(gw.port, { 'x-user-id': key })).body, to, `${key} stays where it moved`);
});

t.test('consistent-hash on a cookie finds it among the others', async (t) => {
  const { gw } = await setUp(t, 3, '    balancer: consistent-hash\n    hashOn: cookie:session\n');
  const byKey = await owners(t, KEYS, 2, (key) => get(gw.port, { cookie: `theme=dark; session=${key}; lang=en` }));
  t.ok(new Set(byKey.values()).size >= 2, 'the sessions are spread');
  // The same session alone, or first, is the same key.
  for (const key of KEYS.slice(0, 6)) {
    t.equal((await get(gw.port, { cookie: `session=${key}` })).body, byKey.get(key), `${key} alone`);
    t.equal((await get(gw.port, { cookie: `session=${key};theme=light` })).body, byKey.get(key), `${key} first`);
  }
  // A cookie whose name only ends in "session" is not the key: those requests spread at random like keyless ones.
  const other = new Set<string>();
  for (let i = 0; i < 30; i++) other.add((await get(gw.port, { cookie: 'xsession=same' })).body);
  t.ok(other.size >= 2, `xsession= is not session= (${other.size} endpoints answered)`);
});

t.test('consistent-hash on client-ip keeps each client address on one endpoint', async (t) => {
  const { gw } = await setUp(t, 3, '    balancer: consistent-hash\n    hashOn: client-ip\n');
  const clients = Array.from({ length: 12 }, (_, i) => `127.0.0.${i + 2}`);
  const byClient = await owners(t, clients, 3, (ip) => get(gw.port, {}, ip));
  t.ok(new Set(byClient.values()).size >= 2, `12 client addresses use more than one endpoint (${new Set(byClient.values()).size})`);
});

t.test('weighted-round-robin gives each endpoint its static weight, exactly', async (t) => {
  const { ups, gw } = await setUp(t, 2, '    balancer: weighted-round-robin\n', (u) => [{ url: u[0]!.address, weight: 3 }, u[1]!.address]);
  for (let i = 0; i < 40; i++) t.equal((await get(gw.port)).status, 200);
  t.equal(ups[0]!.hits(), 30, 'weight 3: 30 of 40');
  t.equal(ups[1]!.hits(), 10, 'weight 1: 10 of 40');
});

t.test('least-request sends new requests past an endpoint that is holding one', async (t) => {
  // One endpoint that holds every request until the test ends, beside a counting one that answers at once.
  const held: http.ServerResponse[] = [];
  const slow = await listenOnLoopback(http.createServer((req, res) => { req.resume(); held.push(res); }));
  t.teardown(() => slow.close());
  const { ups, gw } = await setUp(t, 1, '    balancer: least-request\n    retry: { attempts: 0 }\n', (u) => [slow.url, u[0]!.address]);

  // Two at once: both endpoints have none in flight, so the first goes to one and the second to the other.
  const pending = [get(gw.port), get(gw.port)];
  await waitFor(() => held.length === 1 && ups[0]!.hits() === 1, 5000, 'one request at each endpoint');
  t.equal(held.length, 1, 'the slow endpoint holds one request');
  const before = ups[0]!.hits();
  for (let i = 0; i < 20; i++) t.equal((await get(gw.port)).body, ups[0]!.address, `request ${i} went to the idle endpoint`);
  t.equal(ups[0]!.hits() - before, 20);
  t.equal(held.length, 1, 'nothing more was sent to the busy endpoint');
  for (const res of held) res.end('slow');
  await Promise.all(pending);
});
