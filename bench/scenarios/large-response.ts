import { routesFile } from './routes-file.js';
import type { Scenario } from './scenario.js';
import { smallKeepalive } from './small-keepalive.js';

/** small-keepalive with a 10 KiB response body: the cost of moving bytes (several TCP segments per response). */
export const largeResponse: Scenario = {
  ...smallKeepalive,
  name: 'large-response',
  summary: 'GET /bench, 10 KiB body, keep-alive on both hops, 1 route, 1 static endpoint, access log on',
  upstreamBodyBytes: 10 * 1024,
  routesYaml: (upstream) => routesFile('large-response', upstream),
};
