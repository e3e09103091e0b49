import http from 'node:http';
import t from 'tap';
import { changesWithVariant, largeRoutePath, largeRouteHost, largeRoutesYaml } from '../../bench/large-routes-file.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { waitFor } from '../helpers/capture-log.js';

const ROUTES = 10_000;
const header = 'listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nlog: { level: info, access: false }\n';

function get(port: number, agent: http.Agent, path: string, host = 'any.test', headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent, headers: { host, ...headers } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); })
      .on('error', reject);
  });
}

t.test('a 10 000-route file reloads while requests keep being answered; a large invalid file is refused with file:line:col', async (t) => {
  const up = await startRecordingUpstream((_req, res) => { res.writeHead(200, { 'content-length': '2' }); res.end('ok'); });
  const yaml = (variant: number) => largeRoutesYaml({ routes: ROUTES, services: 20, upstream: up.url, header, variant });
  const gw = await startGateway(yaml(0));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(async () => { agent.destroy(); await gw.close(); await up.close(); });
  t.equal(gw.gateway.current().router.size, ROUTES);
  t.equal(await get(gw.port, agent, `${largeRoutePath(9998)}/x`, largeRouteHost(9998)), 200, 'a host route near the end');
  t.equal(await get(gw.port, agent, `${largeRoutePath(9997)}/x`, 'any.test', { 'x-tenant': `tenant-${9997 % 97}` }), 200, 'a header route');
  t.equal(await get(gw.port, agent, largeRoutePath(1)), 200, 'a route the next file changes');

  // Requests to a route every variant keeps, back to back on 4 connections, for as long as the reload runs.
  await gw.rewrite(yaml(1));
  let reloading = true;
  let answeredDuring = 0;
  const statuses: number[] = [];
  const loops = Array.from({ length: 4 }, async () => {
    while (reloading) {
      const status = await get(gw.port, agent, `${largeRoutePath(3)}/x`);
      statuses.push(status);
      if (reloading) answeredDuring++;
    }
  });
  const outcome = await gw.gateway.reload();
  reloading = false;
  await Promise.all(loops);
  t.match(outcome, { result: 'applied', generation: 2 });
  const changed = Array.from({ length: ROUTES }, (_, i) => i).filter(changesWithVariant).map((i) => `r${i}`);
  t.same(outcome.result === 'applied' && [...outcome.changes.routes.changed].sort(), [...changed].sort(), 'exactly the routes the variant changes');
  t.ok(answeredDuring > 0, `${answeredDuring} requests answered while the reload ran`);
  t.same([...new Set(statuses)], [200], 'every one of them with 200');
  t.equal(await get(gw.port, agent, largeRoutePath(1, 1)), 200, 'the changed route at its new path');
  t.equal(await get(gw.port, agent, largeRoutePath(1)), 404, 'and no longer at its old one');
  t.match(await gw.gateway.reload(), { result: 'unchanged', generation: 2 });

  // One problem the worker finds (a route), one the main thread finds (a service's discovery plugin): both located.
  const bad = yaml(2)
    .replace('  svc-3:\n    discovery: { type: static,', '  svc-3:\n    discovery: { type: nope,')
    .replace(/(- name: r9999\n    match: [^\n]*\n    service: )svc-\d+/, '$1nowhere');
  await gw.rewrite(bad);
  const lines = bad.split('\n');
  const serviceLine = lines.findIndex((l) => l.includes('type: nope')) + 1;
  const routeLine = lines.findIndex((l) => l.includes('service: nowhere')) + 1;
  const refused = await gw.gateway.reload();
  t.match(refused, { result: 'refused', generation: 2 });
  t.same(refused.result === 'refused' && refused.problems.map((p) => `${p.line} ${p.path}`), [
    `${serviceLine} services.svc-3.discovery.type`,
    `${routeLine} routes[9999].service`,
  ]);
  t.equal(await get(gw.port, agent, largeRoutePath(1, 1)), 200, 'the previous config keeps serving');
  // Each reload-timing line is written a monitor tick after its reload ends.
  const timings = () => gw.logs.filter((l) => l.event === 'reload-timing').map((l) => l.result);
  await waitFor(() => timings().length >= 3, 5000, 'three reload-timing lines', 20);
  t.same(timings(), ['applied', 'unchanged', 'refused'], 'one reload-timing line per reload');
});
