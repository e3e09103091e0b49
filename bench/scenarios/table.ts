import { GET, type Scenario } from './scenario.js';

const SMALL = 'GET /bench, 100-byte body, keep-alive on both hops, 1 route, 1 static endpoint, access log on';
const small = { connections: 50, upstreamBodyBytes: 100, path: '/bench', request: GET } as const;
const TLS = 'GET /bench over HTTPS, 100-byte body, plain HTTP/1.1 keep-alive to the upstream, 1 route, access log on';

/** Distinct hosts the host routes of a routing table are spread over: many prefixes per host, as multi-tenant tables have. */
const HOSTS = 100;

/**
 * `count` routes in one shape whatever the count, so routes-10 and routes-10k differ only in size. Route i (from 0),
 * with k = floor(i / 2): an even i is a prefix route for any host, `/p<k>/api`; an odd i is a host route, host
 * `h<k % 100>.bench.test` with prefix `/h<k>/api`. The requests hit the last route defined (a host route): Gantry
 * compiles the table into maps, so the position should not matter; a proxy that scans its routes in order would pay
 * for all of them.
 */
function routingTable(name: string, count: number, summary: string): Scenario {
  const last = count - 1;
  if (last % 2 !== 1) throw new Error('the table must end with a host route: give an even count');
  const k = Math.floor(last / 2);
  const routeLines = Array.from({ length: count }, (_, i) => {
    const j = Math.floor(i / 2);
    const match = i % 2 === 0 ? `{ path: /p${j}/api }` : `{ host: h${j % HOSTS}.bench.test, path: /h${j}/api }`;
    return `  - name: r${i}\n    match: ${match}\n    service: upstream\n`;
  }).join('');
  return {
    ...small, name, routeLines,
    summary: `${summary}; GET /h${k}/api/bench with Host h${k % HOSTS}.bench.test (the last route defined), 100-byte body, access log on`,
    path: `/h${k}/api/bench`,
    request: { method: 'GET', headers: { host: `h${k % HOSTS}.bench.test` }, body: '' },
    gantryOnly: 'routes-10 and routes-10k compare Gantry with itself at two table sizes; the other proxies are not given the table',
  };
}

/** Every scenario, in the order a plain `npm run bench` runs them (routes-10 right before routes-10k, its baseline). */
export const scenarios: readonly Scenario[] = [
  // The hot path: what Gantry adds is the cost of a proxy hop (parse, route, forward, log). The req/s targets are
  // judged on this one.
  { ...small, name: 'small-keepalive', summary: SMALL },
  // Below saturation, where the latency a hop adds shows: a closed loop at saturation measures queueing.
  { ...small, name: 'paced-latency', summary: 'small-keepalive paced at 2,000 req/s over 50 connections (below saturation): latency, not throughput', ratePerS: 2000 },
  // Beside small-keepalive, the gap between the two gantry ÷ direct ratios is what the default policies cost.
  {
    ...small, name: 'resilience-off', summary: `${SMALL}; retries, breakers and outlier detection off`,
    serviceLines: '    retry: { attempts: 0 }\n    circuitBreaker: { enabled: false }\n    outlierDetection: { enabled: false }\n',
  },
  // The cost of moving bytes: several TCP segments per response.
  { ...small, name: 'large-response', summary: SMALL.replace('100-byte', '10 KiB'), upstreamBodyBytes: 10 * 1024 },
  // A request body to stream upstream, and a method not retried by default. The upstream reads the whole body first.
  {
    ...small, name: 'post-1k', summary: 'POST /bench with a 1 KiB body, 100-byte answer, keep-alive on both hops, 1 route, access log on',
    request: { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x'.repeat(1024) },
  },
  routingTable('routes-10', 10, '10 routes, host + prefix mix'),
  // Compared with routes-10 when both run in one invocation.
  routingTable('routes-10k', 10_000, '10 000 routes, host + prefix mix'),
  // Per-connection cost under a deep queue. Every child gets a raised open-files limit (bench/processes.ts).
  { ...small, name: 'connections-1k', summary: SMALL, connections: 1000 },
  // HTTPS: the systems terminate TLS (gantry, nginx, and direct: the upstream answering over TLS itself) and forward
  // over plain HTTP/1.1 keep-alive. The cost of TLS on a kept connection, over HTTP/1.1 and HTTP/2...
  { ...small, name: 'tls-keepalive-h1', summary: `${TLS}, HTTP/1.1 keep-alive (wrk)`, tls: 'http1' },
  { ...small, name: 'tls-h2', summary: `${TLS}, HTTP/2 (h2load, ALPN h2)`, tls: 'http2', connections: 10, streams: 10 },
  // ...and of the connection itself: a full handshake per request (the HTTP/2 aim and this one are judged against nginx).
  { ...small, name: 'tls-handshakes', summary: `${TLS}, one request per connection, every connection a full handshake (a fresh TLS session; h2load)`, tls: 'new-sessions' },
  { ...small, name: 'tls-resumed', summary: `${TLS}, one request per connection, every connection but the first of each client resuming its TLS session (h2load)`, tls: 'resumed-sessions', connections: 20 },
];
