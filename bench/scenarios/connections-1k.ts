import { routesFile } from './routes-file.js';
import type { Scenario } from './scenario.js';
import { smallKeepalive } from './small-keepalive.js';

/**
 * small-keepalive at 1 000 concurrent connections: per-connection cost and fairness under a deep queue. Every child
 * runs with a raised open-files limit (bench/processes.ts); a proxy needs a descriptor per client and per upstream
 * connection.
 */
export const connections1k: Scenario = {
  ...smallKeepalive,
  name: 'connections-1k',
  summary: 'GET /bench, 100-byte body, keep-alive on both hops, 1 route, 1 static endpoint, access log on',
  connections: 1000,
  routesYaml: (upstream) => routesFile('connections-1k', upstream),
};
