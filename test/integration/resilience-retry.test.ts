import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { routesYaml, startGateway } from '../helpers/gateway-under-test.js';
import { requestOnNewConnection } from '../helpers/get-new-connection.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

t.test('a client that leaves while its retry waits out the backoff gets no further try upstream, and frees its slot', async (t) => {
  // 503 with Retry-After: 1 makes the gateway wait a second before the retry (the backoff honours it).
  const up = await startRecordingUpstream((_req, res) => { res.writeHead(503, { 'retry-after': '1' }); res.end('busy'); });
  t.teardown(() => up.close());
  const gw = await startGateway(routesYaml([up.url], '  - { match: { path: / }, service: svc, timeoutMs: 5000 }\n',
    '    retry: { attempts: 3 }\n    bulkhead: { maxConcurrent: 1, maxQueue: 0 }\n    outlierDetection: { enabled: false }\n'));
  t.teardown(() => gw.close());

  const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/x', agent: false });
  req.on('error', () => {});
  await waitFor(() => up.requests.length > 0, 5000, 'the first try upstream');
  await sleep(200);
  t.equal(up.requests.length, 1, 'the first try was answered 503 and the retry waits');
  req.destroy();
  await sleep(1300);
  t.equal(up.requests.length, 1, 'no try after the client left');

  up.behave((_req, res) => res.end('ok'));
  t.same(await requestOnNewConnection(gw.port, '/x'), { status: 200, body: 'ok' }, 'the bulkhead slot went back once the backoff ended');
  t.equal(up.requests.length, 2);
  const line = gw.logs.find((l) => l.msg === 'request' && l.aborted === true);
  t.match(line, { status: 0, endpoint: up.url }, 'the access line of the request whose client left');
  t.equal(line?.attempts, undefined, 'says one try (the field is left out then)');
});
