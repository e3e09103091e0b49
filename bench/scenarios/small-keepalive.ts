import type { Scenario } from './scenario.js';

/**
 * The core hot path: small GETs over keep-alive, one route, one static endpoint, access log on, every other setting at
 * its default. What Gantry adds here is the cost of a proxy hop (parse, route, forward, log) and nothing else.
 */
export const smallKeepalive: Scenario = {
  name: 'small-keepalive',
  summary: 'GET /bench, 100-byte body, keep-alive on both hops, 1 route, 1 static endpoint, access log on',
  connections: 50,
  upstreamBodyBytes: 100,
  path: '/bench',
  routesYaml: (upstream) => `# Written by bench/scenarios/small-keepalive.ts
listen: 127.0.0.1:0
admin: 127.0.0.1:0
server:
  drainGraceMs: 2000
log:
  level: info
  access: true
services:
  upstream:
    discovery:
      type: static
      endpoints: [${JSON.stringify(upstream)}]
routes:
  - name: bench
    match: { path: /bench }
    service: upstream
`,
};
