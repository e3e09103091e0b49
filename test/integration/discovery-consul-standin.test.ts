import { join } from 'node:path';
import t from 'tap';
import type { ConsulHealthEntry } from '../../plugins/discovery/consul.js';
import { waitFor } from '../helpers/capture-log.js';
import { startConsulStandIn } from '../helpers/consul-standin.js';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { makeTestCertificates } from '../helpers/test-certificates.js';

const TOKEN = 'b1gs3cr3t';

function entry(u: CountingUpstream, opts: { tags?: string[]; status?: string; weight?: number; nodeAddress?: boolean } = {}): ConsulHealthEntry {
  return {
    Node: { Node: `node-${u.port}`, Address: '127.0.0.1', Datacenter: 'dc1' },
    Service: {
      ID: `users-${u.port}`, Service: 'users', Address: opts.nodeAddress ? '' : '127.0.0.1', Port: u.port,
      Tags: opts.tags ?? ['v2'], Meta: { version: '2' }, Weights: { Passing: opts.weight ?? 1, Warning: 1 },
    },
    Checks: [{ Status: 'passing' }, { Status: opts.status ?? 'passing' }],
  };
}

function gatewayYaml(url: string, token: string): string {
  return `listen: 127.0.0.1:0
log: { level: debug, access: false }
services:
  api:
    discovery: { type: consul, address: "${url}", service: users, tags: [v2], datacenter: dc1, token: ${token}, waitS: 2, minIntervalMs: 50 }
    balancer: weighted-round-robin
routes:
  - { match: { path: / }, service: api }
`;
}

t.test('consul (stand-in server): passing instances with the tags, blocking queries carry index and wait, changes arrive at once', async (t) => {
  const consul = await startConsulStandIn(TOKEN);
  const [a, b, c, d] = await Promise.all([0, 1, 2, 3].map(() => startCountingUpstream())) as CountingUpstream[] as [CountingUpstream, CountingUpstream, CountingUpstream, CountingUpstream];
  consul.setInstances('users', [entry(a, { weight: 3 }), entry(b, { nodeAddress: true }), entry(c, { status: 'critical' }), entry(d, { tags: ['v1'] })]);
  const gw = await startGateway(gatewayYaml(consul.url, TOKEN));
  t.teardown(async () => { await gw.close(); await consul.close(); await Promise.all([a, b, c, d].map((u) => u.close())); });
  const pool = gw.gateway.current().services.get('api')!.pool;
  t.same(pool.endpoints.map((e) => [e.address, e.weight]).sort(), [[a.address, 3], [b.address, 1]].sort(),
    'the critical instance and the one without tag v2 are left out; the node address stands in for an empty service address');
  const first = consul.requests[0]!;
  t.match(first.url, /^\/v1\/health\/service\/users\?passing=true&dc=dc1&tag=v2$/, 'first query: no index');
  t.equal(first.token, TOKEN, 'the ACL token is sent as X-Consul-Token');

  await waitFor(() => consul.requests.length >= 2, 2000, 'a blocking query');
  t.match(consul.requests[1]!.url, /&index=11&wait=2s$/, 'then blocking queries with the last X-Consul-Index');
  const before = consul.requests.length;
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(consul.requests.length, before, 'a blocking query waits: no polling while nothing changes');

  const changedAt = Date.now();
  consul.setInstances('users', [entry(a, { weight: 3 }), entry(b), entry(c)]);
  await waitFor(() => pool.endpoints.length === 3, 2000, 'the now passing instance');
  t.ok(Date.now() - changedAt < 300, `a change is seen ${Date.now() - changedAt} ms after it happened`);
  for (let i = 0; i < 5; i++) t.equal((await fetch(`${gw.url}/`)).status, 200);
  t.ok(c.hits() > 0, 'and takes traffic');

  await new Promise((r) => setTimeout(r, 2300));
  t.ok(consul.requests.filter((r) => /index=12&wait=2s/.test(r.url)).length >= 2, 'a wait that runs out is asked again with the same index');
  t.equal(pool.endpoints.length, 3);
});

t.test('consul (stand-in server): errors keep the last endpoints; an index that goes backwards starts over', async (t) => {
  const consul = await startConsulStandIn(TOKEN);
  const a = await startCountingUpstream();
  consul.setInstances('users', [entry(a)]);
  const gw = await startGateway(gatewayYaml(consul.url, TOKEN));
  t.teardown(async () => { await gw.close(); await consul.close(); await a.close(); });
  const pool = gw.gateway.current().services.get('api')!.pool;
  t.equal(pool.endpoints.length, 1);

  consul.failWith(500);
  await waitFor(() => !pool.status.up, 3000, 'down on 500');
  t.match(pool.status.lastError, /answered 500: rpc error: No cluster leader/);
  t.equal((await fetch(`${gw.url}/`)).status, 200, 'still serving the last endpoints');
  consul.failWith(null);
  await waitFor(() => pool.status.up, 5000, 'up again');

  consul.setIndex(3);
  const n = consul.requests.length;
  await waitFor(() => consul.requests.slice(n).some((r) => !r.url.includes('index=')), 3000, 'a query without index');
  await waitFor(() => consul.requests.slice(n).some((r) => r.url.includes('index=3&')), 3000, 'blocking on the new index');
  t.pass('after the index went from 11 to 3, the client asked without an index, then blocked on 3');
  t.equal(pool.endpoints.length, 1);
});

t.test('consul (stand-in server): a refused ACL token is a clear discovery error', async (t) => {
  const consul = await startConsulStandIn(TOKEN);
  const gw = await startGateway(gatewayYaml(consul.url, 'wrong').replace('balancer:', 'warmTimeoutMs: 300\n    balancer:'));
  t.teardown(async () => { await gw.close(); await consul.close(); });
  const pool = gw.gateway.current().services.get('api')!.pool;
  await waitFor(() => pool.status.lastError !== null, 3000, 'an error');
  t.match(pool.status, { up: false, endpoints: 0, lastError: /answered 403: ACL not found/ });
  t.equal((await fetch(`${gw.url}/`)).status, 503, 'no endpoints yet: 503, not a crash');
});

t.test('consul over HTTPS with a private CA and client certificates: tls files are used; without the CA it fails clearly', async (t) => {
  const certs = await makeTestCertificates();
  const path = (name: keyof typeof certs.files) => join(certs.dir, certs.files[name]);
  const consul = await startConsulStandIn(TOKEN, { cert: await certs.read('serverCert'), key: await certs.read('serverKey'), ca: await certs.read('ca') });
  const a = await startCountingUpstream();
  consul.setInstances('users', [entry(a)]);
  const withTls = (tls: string) => gatewayYaml(consul.url, TOKEN).replace('waitS: 2', `waitS: 2, tls: ${tls}`).replace('balancer:', 'warmTimeoutMs: 3000\n    balancer:');
  t.teardown(async () => { await consul.close(); await a.close(); await certs.remove(); });
  t.match(consul.url, /^https:/);

  const gw = await startGateway(withTls(JSON.stringify({ caFile: path('ca'), certFile: path('clientCert'), keyFile: path('clientKey') })));
  t.teardown(() => gw.close());
  const pool = gw.gateway.current().services.get('api')!.pool;
  t.same(pool.endpoints.map((e) => e.address), [a.address], 'listed through HTTPS: the CA verified Consul, Consul took the client certificate');
  t.equal((await fetch(`${gw.url}/`)).status, 200);

  const noCa = await startGateway(withTls(JSON.stringify({ certFile: path('clientCert'), keyFile: path('clientKey') })).replace('warmTimeoutMs: 3000', 'warmTimeoutMs: 0'));
  t.teardown(() => noCa.close());
  const noCaPool = noCa.gateway.current().services.get('api')!.pool;
  await waitFor(() => noCaPool.status.lastError !== null, 5000, 'a TLS error');
  t.match(noCaPool.status, { up: false, endpoints: 0, lastError: /^127\.0\.0\.1:\d+: the server's TLS certificate is not trusted \(.*\): give the CA that signed it$/ });

  const noCert = await startGateway(withTls(JSON.stringify({ caFile: path('ca') })).replace('warmTimeoutMs: 3000', 'warmTimeoutMs: 0'));
  t.teardown(() => noCert.close());
  const noCertPool = noCert.gateway.current().services.get('api')!.pool;
  await waitFor(() => noCertPool.status.lastError !== null, 5000, 'a refused handshake');
  t.match(noCertPool.status, { up: false, endpoints: 0 }, `without a client certificate Consul refuses: ${noCertPool.status.lastError}`);
});
