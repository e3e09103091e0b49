import http from 'node:http';
import t from 'tap';
import { startCountingUpstream } from '../helpers/counting-upstream.js';
import { routesYaml, startGateway } from '../helpers/gateway-under-test.js';
import { listenOnLoopback } from '../helpers/listen-loopback.js';

t.test('with the default timeouts, a request that meets a silent endpoint gets its 200 from a healthy one before the deadline', async (t) => {
  let held = 0;
  const silent = await listenOnLoopback(http.createServer(() => { held++; }));
  const healthy = await startCountingUpstream();
  // Nothing about timeouts in the file: a 15 s route deadline and the default per-try timeout.
  const gw = await startGateway(routesYaml([silent.url, healthy.address]));
  t.teardown(async () => { await gw.close(); await silent.close(); await healthy.close(); });

  // Round robin sends half of them to the silent endpoint first.
  const started = Date.now();
  const answers = await Promise.all([1, 2, 3, 4].map(async () => {
    const res = await fetch(`${gw.url}/x`, { signal: AbortSignal.timeout(20_000) });
    return { status: res.status, body: await res.text(), ms: Date.now() - started };
  }));
  t.equal(held, 2, 'two requests met the silent endpoint');
  for (const a of answers) {
    t.match(a, { status: 200, body: healthy.address }, 'answered by the healthy endpoint');
    // Generous: the deadline is 15 s, a retry after a 5 s try ends near 5 s.
    t.ok(a.ms < 12_000, `well within the 15 s deadline (${a.ms} ms)`);
  }
});
