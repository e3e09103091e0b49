import { routesFile } from './routes-file.js';
import type { Scenario } from './scenario.js';

/** Distinct hosts the host routes are spread over: each host gets many prefixes, as a real multi-tenant table would. */
const HOSTS = 100;

/**
 * A table of `count` routes in one shape whatever the count, so routes-10 and routes-10k differ only in size. Route i
 * (from 0), with k = floor(i / 2): an even i is a prefix route for any host, `/p<k>/api`; an odd i is a host route,
 * host `h<k % 100>.bench.test` with prefix `/h<k>/api`. The requests hit the last route defined (a host route):
 * Host h<…>.bench.test, GET /h<k>/api/bench. Gantry compiles the table into maps, so the position should not matter;
 * a proxy that scans its routes in order would pay for all of them here.
 */
export function routingTableScenario(name: string, count: number, summary: string): Scenario {
  const last = count - 1;
  if (last % 2 !== 1) throw new Error('the table must end with a host route: give an even count');
  const k = Math.floor(last / 2);
  const routeLines = Array.from({ length: count }, (_, i) => {
    const j = Math.floor(i / 2);
    const match = i % 2 === 0 ? `{ path: /p${j}/api }` : `{ host: h${j % HOSTS}.bench.test, path: /h${j}/api }`;
    return `  - name: r${i}\n    match: ${match}\n    service: upstream\n`;
  }).join('');
  return {
    name,
    summary: `${summary}; GET /h${k}/api/bench with Host h${k % HOSTS}.bench.test (the last route defined), 100-byte body, access log on`,
    connections: 50,
    upstreamBodyBytes: 100,
    path: `/h${k}/api/bench`,
    request: { method: 'GET', headers: { host: `h${k % HOSTS}.bench.test` }, body: '' },
    gantryOnly: 'routes-10 and routes-10k compare Gantry with itself at two table sizes; the other proxies are not given the table',
    routesYaml: (upstream) => routesFile(name, upstream, { routeLines }),
  };
}
