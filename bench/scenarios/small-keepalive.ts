import { routesFile } from './routes-file.js';
import { GET, type Scenario } from './scenario.js';

/**
 * The core hot path: small GETs over keep-alive, one route, one static endpoint, access log on, every other setting at
 * its default. What Gantry adds here is the cost of a proxy hop (parse, route, forward, log) and nothing else. Issue
 * 8's targets are stated for this scenario.
 */
export const smallKeepalive: Scenario = {
  name: 'small-keepalive',
  summary: 'GET /bench, 100-byte body, keep-alive on both hops, 1 route, 1 static endpoint, access log on',
  connections: 50,
  upstreamBodyBytes: 100,
  path: '/bench',
  request: GET,
  routesYaml: (upstream) => routesFile('small-keepalive', upstream),
};
