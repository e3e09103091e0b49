import type { TrafficWindow } from './traffic-window.js';

/**
 * Request counters kept as plain numbers and handed to prom-client only when /metrics is scraped.
 *
 * Why not prom-client children on the hot path: `counter.labels(...)` in prom-client 15 returns `inc` bound to the
 * labels object, and every `inc`/`observe` still validates the labels and rebuilds the hash string of the series
 * (lib/counter.js, lib/histogram.js), so caching children saves nothing. Measured on the 2-core CI VM
 * (bench/metrics-hot-path.ts, bench/RESULTS-metrics.md): a counter inc plus a histogram observe through cached
 * children cost 1.1-1.4 µs per request; GatewayMetrics.requestFinished, with the dashboard's window, 0.12-0.16 µs.
 */

/** Status classes, by index: 1xx..5xx, and `aborted` (the client left before a response head was sent). */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const;
const ABORTED = 5;

/** Latency histogram bounds (seconds) exported as `le`: 1 ms to 60 s, the range a gateway's SLOs live in. */
export const LATENCY_BOUNDS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

export function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : ABORTED;
}

/** The counters of one route (and the service it sent to). */
export class RouteSeries {
  readonly byClass = new Float64Array(STATUS_CLASSES.length);
  /** Non-cumulative counts per LATENCY_BOUNDS_S bucket; the +Inf bucket is `count`. */
  readonly buckets = new Float64Array(LATENCY_BOUNDS_S.length);
  count = 0;
  sumSeconds = 0;
  bytes = 0;

  constructor(
    readonly route: string,
    readonly service: string,
    /** The dashboard's window for the service; null for requests that matched no route. */
    readonly traffic: TrafficWindow | null,
  ) {}

  record(status: number, durationMs: number, bytes: number): void {
    this.byClass[statusClassIndex(status)]!++;
    const seconds = durationMs / 1000;
    this.count++;
    this.sumSeconds += seconds;
    this.bytes += bytes;
    // At most 15 comparisons, most requests stop in the first few.
    for (let i = 0; i < LATENCY_BOUNDS_S.length; i++) {
      if (seconds <= LATENCY_BOUNDS_S[i]!) { this.buckets[i]!++; break; }
    }
    this.traffic?.record(durationMs, status >= 500);
  }
}

type Labels = Record<string, string | number>;
interface Sample { readonly labels: Labels; readonly value: number; readonly metricName?: string }

/**
 * A metric whose samples are computed when scraped, in the shape prom-client's Registry formats
 * (registerMetric / getMetricsAsString / getMetricsAsJSON).
 */
export class CollectedMetric {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly labelNames: readonly string[],
    private readonly samples: () => Sample[],
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() };
  }

  /** The numbers belong to the request path; a registry reset does not clear them. */
  reset(): void {}
}

/** Histogram samples for one series: cumulative `_bucket{le}` lines, `+Inf`, `_sum` and `_count`. */
export function histogramSamples(name: string, labels: Labels, s: RouteSeries): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  for (let i = 0; i < LATENCY_BOUNDS_S.length; i++) {
    cumulative += s.buckets[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: LATENCY_BOUNDS_S[i]! }, value: cumulative });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count });
  out.push({ metricName: `${name}_sum`, labels, value: s.sumSeconds });
  out.push({ metricName: `${name}_count`, labels, value: s.count });
  return out;
}
