import t from 'tap';
import { mergeMetrics } from '../../gateway/admin/cluster-metrics.js';
import { RouteSeries, routeSeriesChunks, SERIES_WIDTH } from '../../gateway/admin/request-series.js';
import { SliceClock } from '../../gateway/runtime/slice-clock.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';

t.test('the per-route families come in chunks of about 64 KiB, family by family, each series whole in one chunk', async (t) => {
  const series = Array.from({ length: 2000 }, (_, i) => {
    const s = new RouteSeries(`r${i}`, 'svc', null);
    s.record(200, 3, 100);
    return s;
  });
  const chunks: string[] = [];
  for await (const chunk of routeSeriesChunks(series, new SliceClock())) chunks.push(chunk);
  t.ok(chunks.length > 10, `${chunks.length} chunks for 2,000 series`);
  t.ok(chunks.every((c) => c.length < 64 * 1024 + 4096), 'none much over 64 KiB');
  t.ok(chunks.every((c) => c.endsWith('\n')), 'a chunk ends at a line end');
  const lines = chunks.join('').split('\n');
  const first = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
  const last = (prefix: string) => lines.length - 1 - [...lines].reverse().findIndex((l) => l.startsWith(prefix));
  t.equal(lines.filter((l) => l.startsWith('gantry_requests_total{')).length, 2000);
  t.ok(last('gantry_requests_total{') < first('gantry_request_duration_seconds_bucket{') && last('gantry_request_duration_seconds_count{') < first('gantry_response_body_bytes_total{'), 'families do not interleave');
  t.equal(lines.filter((l) => l.startsWith('# TYPE ')).length, 3, 'one TYPE line per family');
});

t.test('writeTo and addFrom carry every count of a series through a RouteCountsBatch', async (t) => {
  const a = new RouteSeries('r', 'svc', null);
  a.record(200, 3, 100);
  a.record(503, 2000, 7);
  const values = new Float64Array(SERIES_WIDTH * 2);
  a.writeTo(values, SERIES_WIDTH);
  const b = new RouteSeries('r', 'svc', null);
  b.addFrom(values, SERIES_WIDTH);
  b.addFrom(values, SERIES_WIDTH);
  t.same([Array.from(b.byClass), Array.from(b.buckets), b.count, b.sumSeconds, b.bytes],
    [Array.from(a.byClass, (n) => n * 2), Array.from(a.buckets, (n) => n * 2), 4, a.sumSeconds * 2, 214]);
});

t.test('mergeMetrics sums the route counts of every part by route and service (a part may have none)', async (t) => {
  const part = (...routes: [string, number][]) => {
    const series = routes.map(([route, requests]) => {
      const s = new RouteSeries(route, 'svc', null);
      for (let i = 0; i < requests; i++) s.record(200, 3, 100);
      return s;
    });
    const values = new Float64Array(series.length * SERIES_WIDTH);
    series.forEach((s, i) => s.writeTo(values, i * SERIES_WIDTH));
    return { routes: { keys: series.map((s) => `${s.route}\n${s.service}`), values }, metrics: [] };
  };
  const merged = await mergeMetrics([part(['r1', 2], ['r2', 1]), part(['r1', 1]), part()]);
  let text = '';
  for await (const chunk of merged.chunks) text += chunk;
  const metrics = parsePromText(text);
  t.same(['r1', 'r2'].map((route) => sampleValue(metrics, 'gantry_requests_total', { route, service: 'svc', status_class: '2xx' })), [3, 1]);
  t.equal(sampleValue(metrics, 'gantry_response_body_bytes_total', { route: 'r1', service: 'svc' }), 300);
});
