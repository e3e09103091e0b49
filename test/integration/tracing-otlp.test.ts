import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { freePort } from '../helpers/free-port.js';
import { routesYaml, startGateway } from '../helpers/gateway-under-test.js';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

// Honoured by the SDK (docs/observability.md): a short batch delay so the spans arrive while the test waits, and the
// resource's service name and attributes from the environment.
process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
process.env.OTEL_SERVICE_NAME = 'edge-under-test';
process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment=test';

const PARENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN = 'b7ad6b7169203331';
const ROUTES = '  - name: api\n    match: { path: / }\n    service: svc\n';
const RETRY = '    retry: { attempts: 1, backoff: { initialMs: 1, maxMs: 1 } }\n    outlierDetection: { enabled: false }\n';

function tracedYaml(upstream: string, endpoint: string, extra = ''): string {
  return routesYaml([upstream], ROUTES, RETRY).replace('services:', `tracing: { spans: true, endpoint: "${endpoint}"${extra} }\nservices:`);
}

t.test('a retried request: one server span, the two tries as sibling client spans, each try\'s id in the upstream\'s traceparent', async (t) => {
  const receiver = await startOtlpReceiver();
  let answered = 0;
  const up = await startRecordingUpstream((_req, res) => {
    if (answered++ === 0) { res.writeHead(503); res.end('busy'); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  const gw = await startGateway(tracedYaml(up.url, receiver.url));
  t.teardown(async () => { await gw.close(); await up.close(); await receiver.close(); });

  const res = await fetch(`${gw.url}/items?x=1`, { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01`, 'x-request-id': 'traced-1' } });
  t.equal(res.status, 200);
  t.equal(await res.text(), 'ok');
  const spans = await waitFor(() => (receiver.spans.length >= 3 ? receiver.spans : undefined), 10_000, 'three spans at the receiver');
  const server = spans.find((s) => s.kind === 'SPAN_KIND_SERVER') as ReceivedSpan;
  const clients = spans.filter((s) => s.kind === 'SPAN_KIND_CLIENT');
  t.equal(spans.length, 3, 'a server span and two client spans, nothing else');
  t.equal(clients.length, 2);
  t.equal(server.name, 'GET api', 'named after the method and the route');
  t.equal(server.traceId, PARENT_TRACE, 'the trace of the request\'s traceparent');
  t.equal(server.parentSpanId, PARENT_SPAN, 'a child of the caller\'s span');
  t.match(server.attributes, {
    'http.request.method': 'GET', 'http.route': 'api', 'url.path': '/items', 'url.scheme': 'http', 'server.address': '127.0.0.1',
    'http.response.status_code': 200, 'network.protocol.version': '1.1', 'gantry.service': 'svc', 'gantry.endpoint': up.url,
    'gantry.request_id': 'traced-1', 'gantry.attempts': 2,
  });
  t.equal(server.scope, 'gantry');
  t.match(server.resource, { 'service.name': 'edge-under-test', 'deployment.environment': 'test' }, 'OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES');
  for (const c of clients) {
    t.equal(c.traceId, PARENT_TRACE);
    t.equal(c.parentSpanId, server.spanId, 'each try is a child of the server span (retries are siblings)');
    t.match(c.attributes, { 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': up.port, 'gantry.endpoint': up.url, 'url.full': `${up.url}/items?x=1` });
  }
  const [first, retry] = [clients.find((c) => c.attributes['http.response.status_code'] === 503), clients.find((c) => c.attributes['http.response.status_code'] === 200)];
  t.match(first?.attributes, { 'gantry.outcome': 'dropped', 'error.type': '503' }, 'the first try: a 503, thrown away for the retry');
  t.equal(first?.status, 'STATUS_CODE_ERROR');
  t.match(retry?.attributes, { 'gantry.outcome': 'relayed', 'http.request.resend_count': 1 }, 'the retry: relayed to the client');
  t.same(up.requests.map((r) => r.headers.traceparent), [`00-${PARENT_TRACE}-${first?.spanId}-01`, `00-${PARENT_TRACE}-${retry?.spanId}-01`],
    'the upstream saw each try\'s own span as its parent');
  const line = gw.logs.find((l) => l.msg === 'request' && l.reqId === 'traced-1');
  t.equal(line?.traceId, PARENT_TRACE, 'the access line carries the trace id');
});

t.test('a request without a traceparent starts a trace at the gateway; a 404 gets a span too', async (t) => {
  const receiver = await startOtlpReceiver();
  const up = await startRecordingUpstream();
  const gw = await startGateway(tracedYaml(up.url, receiver.url).replace('match: { path: / }', 'match: { path: /app }'));
  t.teardown(async () => { await gw.close(); await up.close(); await receiver.close(); });
  t.equal((await fetch(`${gw.url}/app`, { headers: { 'x-request-id': 'root-1' } })).status, 200);
  t.equal((await fetch(`${gw.url}/nowhere`, { headers: { 'x-request-id': 'lost-1' } })).status, 404);
  const spans = await waitFor(() => (receiver.spans.length >= 3 ? receiver.spans : undefined), 10_000, 'three spans at the receiver');
  const roots = spans.filter((s) => s.kind === 'SPAN_KIND_SERVER');
  const routed = roots.find((s) => s.attributes['gantry.request_id'] === 'root-1');
  const lost = roots.find((s) => s.attributes['gantry.request_id'] === 'lost-1');
  t.equal(routed?.parentSpanId, '', 'a root span');
  const client = spans.find((s) => s.kind === 'SPAN_KIND_CLIENT');
  t.equal(up.requests[0]?.headers.traceparent, `00-${routed?.traceId}-${client?.spanId}-01`, 'the upstream joins the gateway\'s trace under the try');
  t.equal(lost?.name, 'GET', 'no route: the method alone');
  t.match(lost?.attributes, { 'http.response.status_code': 404, 'error.type': 'GW_ERR_NO_ROUTE' });
  const lines = gw.logs.filter((l) => l.msg === 'request');
  t.same(lines.map((l) => l.traceId), [routed?.traceId, lost?.traceId], 'both access lines carry their trace id');
});

t.test('a collector that is down costs no request: spans are dropped and counted', async (t) => {
  const closed = await freePort();   // nothing listens there
  const up = await startRecordingUpstream();
  const gw = await startGateway(tracedYaml(up.url, `http://127.0.0.1:${closed}/v1/traces`));
  t.teardown(async () => { await gw.close(); await up.close(); });
  for (let i = 0; i < 20; i++) t.equal((await fetch(`${gw.url}/r${i}`)).status, 200);
  const dropped = await waitFor(async () => {
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const n = Number(/^gantry_tracing_spans_dropped_total (\S+)$/m.exec(text)?.[1] ?? 0);
    return n >= 40 ? n : undefined;
  }, 15_000, 'the spans of 20 requests counted as dropped');
  t.ok(dropped >= 40, `${dropped} spans dropped (a server and a client span per request)`);
  await waitFor(() => gw.logs.some((l) => l.event === 'tracing-export-failed'), 5000, 'the log says the collector is not taking spans');
  t.equal(gw.logs.filter((l) => l.event === 'tracing-export-failed').length, 1, 'once per outage, not once per batch');
});

t.test('a reload moves the spans to a new endpoint, and turning spans off stops them', async (t) => {
  const [a, b] = [await startOtlpReceiver(), await startOtlpReceiver()];
  const up = await startRecordingUpstream();
  const gw = await startGateway(tracedYaml(up.url, a.url));
  t.teardown(async () => { await gw.close(); await up.close(); await a.close(); await b.close(); });
  t.equal((await fetch(`${gw.url}/one`)).status, 200);
  await waitFor(() => a.spans.length >= 2, 10_000, 'the first request\'s spans at the first receiver');
  await gw.rewrite(tracedYaml(up.url, b.url));
  t.match(await gw.gateway.reload(), { result: 'applied' });
  await waitFor(() => gw.gateway.current().config.tracing.endpoint === b.url);
  t.equal((await fetch(`${gw.url}/two`)).status, 200);
  await waitFor(() => b.spans.length >= 2, 10_000, 'the second request\'s spans at the second receiver');
  t.equal(a.spans.length, 2, 'none of them at the first');
  t.same(b.spans.map((s) => s.attributes['url.path'] ?? s.attributes['url.full']).sort(), ['/two', `${up.url}/two`]);

  await gw.rewrite(routesYaml([up.url], ROUTES, RETRY));
  t.match(await gw.gateway.reload(), { result: 'applied' });
  t.equal((await fetch(`${gw.url}/three`, { headers: { 'x-request-id': 'untraced' } })).status, 200);
  t.equal(up.requests.at(-1)?.headers.traceparent, undefined, 'spans off: no traceparent is made up');
  const line = gw.logs.find((l) => l.msg === 'request' && l.reqId === 'untraced');
  t.notOk(line && 'traceId' in line, 'and the access line has no trace id');
});

t.test('without tracing.endpoint the exporter follows OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces)', async (t) => {
  const receiver = await startOtlpReceiver();
  const up = await startRecordingUpstream();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url.replace('/v1/traces', '');
  t.teardown(() => { delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT; });
  const gw = await startGateway(routesYaml([up.url], ROUTES).replace('services:', 'tracing: { spans: true }\nservices:'));
  t.teardown(async () => { await gw.close(); await up.close(); await receiver.close(); });
  t.equal((await fetch(`${gw.url}/env`)).status, 200);
  const spans = await waitFor(() => (receiver.spans.length >= 2 ? receiver.spans : undefined), 10_000, 'the spans at the environment\'s collector');
  t.same(spans.map((s) => s.kind).sort(), ['SPAN_KIND_CLIENT', 'SPAN_KIND_SERVER']);
});

t.test('a request held until a scaled-from-zero service has an endpoint: its server span shows the wait', async (t) => {
  const receiver = await startOtlpReceiver();
  const echo = fileURLToPath(new URL('../../examples/echo-server.js', import.meta.url));
  const gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
tracing: { spans: true, endpoint: "${receiver.url}" }
services:
  app:
    discovery: { type: scaler }
    scaling:
      scaler: { type: process, command: [node, ${JSON.stringify(echo)}], healthIntervalMs: 25, stopGraceMs: 2000, output: ignore }
      min: 0
      max: 1
      intervalMs: 200
      hold: { maxQueue: 10, timeoutMs: 15000 }
routes:
  - { name: app, match: { path: / }, service: app }
`);
  t.teardown(async () => { await gw.close(); await receiver.close(); });
  t.equal((await fetch(`${gw.url}/cold`, { signal: AbortSignal.timeout(15_000) })).status, 200);
  const server = await waitFor(() => receiver.spans.find((s) => s.kind === 'SPAN_KIND_SERVER'), 10_000, 'the server span');
  t.same(server.events.map((e) => [e.name, e.attributes]), [
    ['held', { 'gantry.service': 'app' }],
    ['hold ended', { 'gantry.outcome': 'endpoint ready' }],
  ]);
});

t.test('parent-based sampling: at ratio 0 a sampled caller\'s trace is still recorded, an unsampled one and the gateway\'s own roots are not', async (t) => {
  const receiver = await startOtlpReceiver();
  const up = await startRecordingUpstream();
  const gw = await startGateway(tracedYaml(up.url, receiver.url, ', sampleRatio: 0'));
  t.teardown(async () => { await gw.close(); await up.close(); await receiver.close(); });
  const unsampledTrace = '1af7651916cd43dd8448eb211c80319c';
  t.equal((await fetch(`${gw.url}/root`, { headers: { 'x-request-id': 'root' } })).status, 200);
  t.equal((await fetch(`${gw.url}/off`, { headers: { traceparent: `00-${unsampledTrace}-${PARENT_SPAN}-00`, 'x-request-id': 'off' } })).status, 200);
  t.equal((await fetch(`${gw.url}/on`, { headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01`, 'x-request-id': 'on' } })).status, 200);
  await waitFor(() => receiver.spans.length >= 2, 10_000, 'the sampled request\'s spans');
  // The sampled request came last: a batch holding the others' spans would have arrived with (or before) it.
  await new Promise((r) => setTimeout(r, 300));
  t.same(receiver.spans.map((s) => s.traceId), [PARENT_TRACE, PARENT_TRACE], 'only the sampled caller\'s trace: its server and client span');
  const [root, off] = up.requests.map((r) => r.headers.traceparent as string);
  t.match(off, new RegExp(`^00-${unsampledTrace}-[0-9a-f]{16}-00$`), 'the unsampled trace goes on, still unsampled');
  t.match(root, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'a root at ratio 0: a trace id for the upstream, not sampled');
  t.ok(gw.logs.find((l) => l.msg === 'request' && l.reqId === 'root')?.traceId, 'its access line still has the trace id');
});

t.test('a try the open breaker refused is an event on the server span', async (t) => {
  const receiver = await startOtlpReceiver();
  const up = await startRecordingUpstream((_req, res) => { res.socket?.destroy(); });
  const breaker = '    retry: { attempts: 0 }\n    circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 60000 }\n';
  const gw = await startGateway(routesYaml([up.url], ROUTES, breaker).replace('services:', `tracing: { spans: true, endpoint: "${receiver.url}" }\nservices:`));
  t.teardown(async () => { await gw.close(); await up.close(); await receiver.close(); });
  t.equal((await fetch(`${gw.url}/a`, { headers: { 'x-request-id': 'opens' } })).status, 502, 'the failure opens the breaker');
  t.equal((await fetch(`${gw.url}/b`, { headers: { 'x-request-id': 'refused' } })).status, 503, 'the open breaker refuses the next');
  const server = await waitFor(() => receiver.spans.find((s) => s.kind === 'SPAN_KIND_SERVER' && s.attributes['gantry.request_id'] === 'refused'), 10_000, 'the refused request\'s span');
  t.same(server.events.map((e) => [e.name, e.attributes]), [['breaker rejected', { 'gantry.breakers_open': 1, 'gantry.endpoints': 1 }]]);
  t.match(server.attributes, { 'http.response.status_code': 503 });
});

t.test('the ratio samples that share of the traces the gateway starts, and a reload changes it', async (t) => {
  const receiver = await startOtlpReceiver();
  const up = await startRecordingUpstream();
  const gw = await startGateway(tracedYaml(up.url, receiver.url, ', sampleRatio: 0.25'));
  t.teardown(async () => { await gw.close(); await up.close(); await receiver.close(); });
  const servers = () => receiver.spans.filter((s) => s.kind === 'SPAN_KIND_SERVER').length;
  const statuses = new Set<number>();
  for (let i = 0; i < 400; i++) statuses.add((await fetch(`${gw.url}/q${i}`)).status);
  t.same([...statuses], [200], 'every request answered');
  const sampled = up.requests.filter((r) => (r.headers.traceparent as string).endsWith('-01')).length;
  await waitFor(() => servers() === sampled, 10_000, `the ${sampled} sampled requests' server spans`);
  // Binomial(400, 0.25): mean 100, standard deviation 8.7; 60-140 is beyond 4.5 deviations either way.
  t.ok(sampled >= 60 && sampled <= 140, `${sampled} of 400 sampled at 0.25`);
  await gw.rewrite(tracedYaml(up.url, receiver.url, ', sampleRatio: 1'));
  t.match(await gw.gateway.reload(), { result: 'applied' });
  await waitFor(() => gw.gateway.current().config.tracing.sampleRatio === 1);
  for (let i = 0; i < 20; i++) t.equal((await fetch(`${gw.url}/all${i}`)).status, 200);
  await waitFor(() => servers() === sampled + 20, 10_000, 'every request after the reload sampled');
  t.ok(up.requests.slice(-20).every((r) => (r.headers.traceparent as string).endsWith('-01')));
});
