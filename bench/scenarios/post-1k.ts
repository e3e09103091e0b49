import { routesFile } from './routes-file.js';
import type { Scenario } from './scenario.js';
import { smallKeepalive } from './small-keepalive.js';

/**
 * POSTs with a 1 KiB body (Content-Length, application/octet-stream): a request body to stream upstream, and a
 * method that is not retried by default. The upstream reads the whole body before it answers.
 */
export const post1k: Scenario = {
  ...smallKeepalive,
  name: 'post-1k',
  summary: 'POST /bench with a 1 KiB body, 100-byte answer, keep-alive on both hops, 1 route, access log on',
  request: { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x'.repeat(1024) },
  routesYaml: (upstream) => routesFile('post-1k', upstream),
};
