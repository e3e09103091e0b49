import t from 'tap';
import { clampTtl, srvEndpoints } from '../../plugins/discovery/dns.js';
import { parseDnsServer, querySrv } from '../../plugins/discovery/dns-srv-query.js';
import { waitFor } from '../helpers/capture-log.js';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { startDnsmasq } from '../helpers/dnsmasq.js';
import { startGateway } from '../helpers/gateway-under-test.js';

function gatewayYaml(discovery: string, balancer = 'round-robin'): string {
  return `listen: 127.0.0.1:0
log: { level: debug, access: false }
services:
  api:
    discovery: ${discovery}
    balancer: ${balancer}
routes:
  - { match: { path: / }, service: api }
`;
}

async function get(url: string): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: r.status, body: await r.text(), ms: Date.now() - t0 };
}

t.test('clamped TTLs, server strings, and SRV priority groups', async (t) => {
  t.equal(clampTtl(0, 5, 300), 5, 'a TTL of 0 would be a query loop');
  t.equal(clampTtl(86400, 5, 300), 300);
  t.equal(clampTtl(30, 5, 300), 30);
  t.same(parseDnsServer('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
  t.same(parseDnsServer('[::1]:5353'), { host: '::1', port: 5353 });
  t.same(parseDnsServer('::1'), { host: '::1', port: 53 });
  t.throws(() => parseDnsServer('dns.example:53'), /not an IP address/);
  const records = [
    { priority: 20, weight: 1, port: 3, target: 'c', ttlS: 5 },
    { priority: 10, weight: 0, port: 1, target: 'a', ttlS: 5 },
    { priority: 10, weight: 7, port: 2, target: 'b', ttlS: 5 },
  ];
  t.same(srvEndpoints(records, new Map([['a', ['127.0.0.2']], ['b', ['::1']], ['c', ['127.0.0.4']]]), 'http').map((e) => [e.address, e.weight]),
    [['http://127.0.0.2:1', 1], ['http://[::1]:2', 7]], 'the lowest priority only; weight 0 counts as 1');
  t.same(srvEndpoints(records, new Map([['c', ['127.0.0.4']]]), 'https').map((e) => e.address), ['https://127.0.0.4:3'],
    'a priority whose targets do not resolve falls back to the next');
});

t.test('dns A records (dnsmasq): a changed record is followed after its TTL, re-resolved once per TTL in the background', async (t) => {
  const a = await startCountingUpstream('127.0.0.2');
  const b = await startCountingUpstream('127.0.0.3', a.port);
  const v6 = await startCountingUpstream('::1', a.port).catch(() => null);
  const dns = await startDnsmasq(['--local-ttl=1', '--host-record=both.test,127.0.0.2,::1'], { hosts: '127.0.0.2 api.test\n' });
  const gw = await startGateway(gatewayYaml(`{ type: dns, name: api.test, port: ${a.port}, servers: ["${dns.server}"], minTtlS: 1 }`));
  t.teardown(async () => { await gw.close(); await dns.stop(); await a.close(); await b.close(); await v6?.close(); });
  const pool = gw.gateway.current().services.get('api')!.pool;
  t.same(pool.endpoints.map((e) => e.address), [a.address], 'the first answer was there before traffic');
  t.equal((await get(`${gw.url}/`)).body, a.address);

  const queries = () => dns.log.filter((l) => l.includes('query[A] api.test')).length;
  const before = queries();
  await new Promise((r) => setTimeout(r, 3000));
  const asked = queries() - before;
  t.ok(asked >= 2 && asked <= 5, `asked ${asked} times in 3 s with a 1 s TTL`);

  const changed = Date.now();
  await dns.setHosts('127.0.0.3 api.test\n');
  await waitFor(() => pool.endpoints[0]?.address === b.address, 4000, 'changed record');
  const tookMs = Date.now() - changed;
  t.ok(tookMs <= 2500, `followed ${tookMs} ms after the change (TTL 1 s)`);
  for (let i = 0; i < 3; i++) t.equal((await get(`${gw.url}/`)).body, b.address);
  t.equal(pool.status.up, true);

  // The name is removed (NXDOMAIN): the source is down, and the gateway keeps serving from the last endpoints.
  await dns.setHosts('');
  await waitFor(() => !pool.status.up, 4000, 'discovery down');
  t.match(pool.status.lastError, /api\.test A: ENOTFOUND/);
  for (let i = 0; i < 3; i++) t.equal((await get(`${gw.url}/`)).body, b.address, 'still served from the last endpoint');
  await dns.setHosts('127.0.0.2 api.test\n');
  await waitFor(() => pool.status.up && pool.endpoints[0]?.address === a.address, 4000, 'the name back');
  t.equal((await get(`${gw.url}/`)).body, a.address, 'and the record is followed again once the name is back');

  if (v6) {
    const both = await startGateway(gatewayYaml(`{ type: dns, name: both.test, record: A+AAAA, port: ${a.port}, servers: ["${dns.server}"], minTtlS: 1 }`));
    t.teardown(() => both.close());
    const addrs = both.gateway.current().services.get('api')!.pool.endpoints.map((e) => e.address).sort();
    t.same(addrs, [a.address, v6.address].sort(), 'A+AAAA gives both families');
  }
});

t.test('dns SRV records (dnsmasq): priority, weight and port from the records; DNS down keeps serving; a restarted server is followed', async (t) => {
  const [u1, u2, u3] = await Promise.all([startCountingUpstream('127.0.0.2'), startCountingUpstream('127.0.0.3'), startCountingUpstream('127.0.0.4')]) as [CountingUpstream, CountingUpstream, CountingUpstream];
  const hostRecords = ['--host-record=t1.test,127.0.0.2', '--host-record=t2.test,127.0.0.3', '--host-record=t3.test,127.0.0.4'];
  const big = Array.from({ length: 25 }, (_, i) => `--srv-host=_big._tcp.svc.test,target-number-${i}-with-a-rather-long-name.test,${1000 + i},1,1`);
  let dns = await startDnsmasq(['--local-ttl=1', ...hostRecords, ...big,
    `--srv-host=_http._tcp.svc.test,t1.test,${u1.port},10,3`,
    `--srv-host=_http._tcp.svc.test,t2.test,${u2.port},10,1`,
    `--srv-host=_http._tcp.svc.test,t3.test,${u3.port},20,1`]);
  const port = dns.port;
  const gw = await startGateway(gatewayYaml(`{ type: dns, name: _http._tcp.svc.test, record: SRV, servers: ["${dns.server}"], minTtlS: 1, timeoutMs: 300, tries: 1 }`, 'weighted-round-robin'));
  t.teardown(async () => { await gw.close(); await dns.stop(); await Promise.all([u1, u2, u3].map((u) => u.close())); });

  const big25 = await querySrv('_big._tcp.svc.test', [parseDnsServer(dns.server)], { timeoutMs: 1000, tries: 1 }, new AbortController().signal);
  t.equal(big25.length, 25, 'an answer too large for UDP is asked again over TCP');
  t.ok(dns.log.some((l) => l.includes('query[SRV] _big._tcp.svc.test')), 'dnsmasq saw the question');

  const pool = gw.gateway.current().services.get('api')!.pool;
  t.same(pool.endpoints.map((e) => [e.address, e.weight]).sort(), [[u1.address, 3], [u2.address, 1]], 'priority 10 only, with its weights and ports');
  for (let i = 0; i < 8; i++) t.equal((await get(`${gw.url}/`)).status, 200);
  t.same([u1.hits(), u2.hits(), u3.hits()], [6, 2, 0], 'traffic split 3:1; the priority-20 target is a fallback');

  await dns.stop();
  await waitFor(() => !pool.status.up, 4000, 'discovery down');
  t.match(pool.status.lastError, /_http\._tcp\.svc\.test SRV: E/);
  for (let i = 0; i < 4; i++) {
    const r = await get(`${gw.url}/`);
    t.equal(r.status, 200, 'still served from the last endpoints');
    t.ok(r.ms < 500, `no request waits on DNS (${r.ms} ms)`);
  }
  t.equal(pool.endpoints.length, 2);

  dns = await startDnsmasq(['--local-ttl=1', ...hostRecords,
    `--srv-host=_http._tcp.svc.test,t1.test,${u1.port},10,1`,
    `--srv-host=_http._tcp.svc.test,t3.test,${u3.port},10,1`], { port });
  const back = Date.now();
  await waitFor(() => pool.status.up && pool.endpoints.some((e) => e.address === u3.address), 8000, 'new records');
  t.pass(`followed the restarted server ${Date.now() - back} ms after it started`);
  t.same(pool.endpoints.map((e) => e.address).sort(), [u1.address, u3.address].sort());
  const u3Before = u3.hits();
  for (let i = 0; i < 4; i++) t.equal((await get(`${gw.url}/`)).status, 200);
  t.equal(u3.hits() - u3Before, 2);
  t.equal(gw.logs.filter((l) => l.event === 'discovery-down').length, 1, 'one line when DNS went down');
});
