import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { SliceClock } from '../runtime/slice-clock.js';
import { exposition, RouteSeries, SERIES_WIDTH, type Exposition, type RouteCountsBatch } from './request-series.js';

/** One cluster worker's metrics, sent over the cluster's IPC (GatewayMetrics.snapshot). */
export interface MetricsSnapshot {
  readonly routes: RouteCountsBatch;
  /** prom-client's getMetricsAsJSON of the gateway's and the process's registries; each names its aggregator. */
  readonly metrics: readonly MetricObjectWithValues<MetricValue<string>>[];
}

/**
 * One Prometheus exposition for the whole cluster, whichever worker the scrape reached. Why: the workers share the
 * admin port, so a scrape answered by one worker's own numbers would make every counter jump between the workers' values
 * (Prometheus reads that as resets). Route counters are summed per route and service; the other metrics combine as
 * each declares (prom-client's AggregatorRegistry: request and error counters and in-flight gauges summed, copies of
 * the primary's announcements such as reload counts and replica gauges taken once, `max`, health as its worst, `min`).
 */
export async function mergeMetrics(snapshots: readonly MetricsSnapshot[]): Promise<Exposition> {
  const slices = new SliceClock();
  const series = new Map<string, RouteSeries>();
  for (const { routes: { keys, values } } of snapshots) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      let s = series.get(key);
      if (s === undefined) {
        const cut = key.indexOf('\n');
        series.set(key, s = new RouteSeries(key.slice(0, cut), key.slice(cut + 1), null));
      }
      s.addFrom(values, i * SERIES_WIDTH);
      if (slices.due()) await slices.pause();
    }
  }
  const registry = AggregatorRegistry.aggregate(snapshots.map((s) => s.metrics as MetricObjectWithValues<MetricValue<string>>[]));
  return { contentType: registry.contentType, chunks: exposition([...series.values()], slices, () => registry.metrics()) };
}
