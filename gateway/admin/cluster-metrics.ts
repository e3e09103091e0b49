import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { SliceClock } from '../runtime/slice-clock.js';
import { formatRouteSeries, RouteSeries, type RouteCounts } from './request-series.js';

/** One cluster worker's metrics, as JSON over the cluster's IPC (GatewayMetrics.snapshot). */
export interface MetricsSnapshot {
  readonly routes: readonly RouteCounts[];
  /** prom-client's getMetricsAsJSON of the gateway's and the process's registries; each names its aggregator. */
  readonly metrics: readonly MetricObjectWithValues<MetricValue<string>>[];
}

/**
 * One Prometheus exposition for the whole cluster, whichever worker the scrape reached. Why: the workers share the
 * admin port, so a scrape answered by one worker's own numbers made every counter jump between the workers' values
 * (Prometheus reads that as resets). Route counters are summed per route and service; the other metrics combine as
 * each declares (prom-client's AggregatorRegistry: request and error counters and in-flight gauges summed, copies of
 * the primary's announcements such as reload counts and replica gauges taken once, `max`, health as its worst, `min`).
 */
export async function mergeMetrics(snapshots: readonly MetricsSnapshot[]): Promise<{ contentType: string; text: string }> {
  const series = new Map<string, RouteSeries>();
  for (const snapshot of snapshots) {
    for (const counts of snapshot.routes) {
      const key = `${counts.route}\n${counts.service}`;
      let s = series.get(key);
      if (s === undefined) series.set(key, s = new RouteSeries(counts.route, counts.service, null));
      s.add(counts);
    }
  }
  const registry = AggregatorRegistry.aggregate(snapshots.map((s) => s.metrics as MetricObjectWithValues<MetricValue<string>>[]));
  const [routes, others] = await Promise.all([formatRouteSeries(series.values(), new SliceClock()), registry.metrics()]);
  return { contentType: registry.contentType, text: `${routes}\n${others}` };
}
