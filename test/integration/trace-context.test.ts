import t from 'tap';
import { routesYaml, startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const PARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

t.test('passes traceparent and tracestate through unchanged and logs the trace id with the request id', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routesYaml([up.url]));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const res = await fetch(`${gw.url}/joined`, { headers: { traceparent: PARENT, tracestate: 'congo=t61rcWkgMzE', 'x-request-id': 'req-1' } });
  t.equal(res.status, 200);
  await res.text();
  const seen = up.requests.at(-1)!.headers;
  t.equal(seen.traceparent, PARENT);
  t.equal(seen.tracestate, 'congo=t61rcWkgMzE');
  await new Promise((r) => setImmediate(r));
  const line = gw.logs.find((l) => l.msg === 'request' && l.reqId === 'req-1');
  t.equal(line?.traceId, '0af7651916cd43dd8448eb211c80319c', 'the access log line carries the trace id');
});

t.test('tracing.createTraceparent: true starts a trace when none arrives, a new one per request, and replaces an invalid one', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routesYaml([up.url]).replace('services:', 'tracing: { createTraceparent: true }\nservices:'));
  t.teardown(async () => { await gw.close(); await up.close(); });
  await (await fetch(`${gw.url}/a`)).text();
  await (await fetch(`${gw.url}/b`, { headers: { traceparent: '00-xyz', tracestate: 'a=1' } })).text();
  const [a, b] = up.requests.map((r) => r.headers);
  t.match(a?.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.match(b?.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.not(a?.traceparent, b?.traceparent);
  t.equal(b?.tracestate, undefined, 'tracestate without a valid traceparent is dropped');
  await new Promise((r) => setImmediate(r));
  const logged = gw.logs.filter((l) => l.msg === 'request').map((l) => l.traceId);
  t.same(logged, [a?.traceparent?.slice(3, 35), b?.traceparent?.slice(3, 35)]);
});

t.test('by default (createTraceparent: false) requests without a traceparent go on without one; an invalid one is dropped', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routesYaml([up.url]));
  t.teardown(async () => { await gw.close(); await up.close(); });
  await (await fetch(`${gw.url}/a`, { headers: { 'x-request-id': 'none' } })).text();
  await (await fetch(`${gw.url}/b`, { headers: { traceparent: PARENT } })).text();
  await (await fetch(`${gw.url}/c`, { headers: { traceparent: '00-xyz', tracestate: 'a=1' } })).text();
  t.equal(up.requests[0]?.headers.traceparent, undefined);
  t.equal(up.requests[1]?.headers.traceparent, PARENT);
  t.equal(up.requests[2]?.headers.traceparent, undefined, 'an invalid traceparent is not passed on');
  t.equal(up.requests[2]?.headers.tracestate, undefined, 'nor its tracestate');
  await new Promise((r) => setImmediate(r));
  const line = gw.logs.find((l) => l.msg === 'request' && l.reqId === 'none');
  t.ok(line, 'the access line is written');
  t.notOk(line && 'traceId' in line, 'with no trace id');
});
