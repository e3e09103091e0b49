import type { SliceClock } from '../runtime/slice-clock.js';
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

export interface RouteCounts {
  readonly route: string;
  readonly service: string;
  readonly byClass: readonly number[];
  readonly buckets: readonly number[];
  readonly count: number;
  readonly sumSeconds: number;
  readonly bytes: number;
}

/** The counters of one route (and the service it sent to). */
export class RouteSeries {
  readonly byClass = new Float64Array(STATUS_CLASSES.length);
  /** Non-cumulative counts per LATENCY_BOUNDS_S bucket; the +Inf bucket is `count`. */
  readonly buckets = new Float64Array(LATENCY_BOUNDS_S.length);
  count = 0;
  sumSeconds = 0;
  bytes = 0;
  /** `route="…",service="…"`, escaped once: the scrape formats thousands of these lines. */
  readonly labels: string;

  constructor(
    readonly route: string,
    readonly service: string,
    /** The dashboard's window for the service; null for requests that matched no route. */
    readonly traffic: TrafficWindow | null,
  ) {
    this.labels = `route="${escapeLabelValue(route)}",service="${escapeLabelValue(service)}"`;
  }

  /** The counts as plain JSON, for a cluster worker to send (cluster-metrics.ts). */
  counts(): RouteCounts {
    const { route, service, count, sumSeconds, bytes } = this;
    return { route, service, byClass: Array.from(this.byClass), buckets: Array.from(this.buckets), count, sumSeconds, bytes };
  }

  /** Adds another worker's counts of the same route and service. */
  add(c: RouteCounts): void {
    for (let i = 0; i < this.byClass.length; i++) this.byClass[i]! += c.byClass[i] ?? 0;
    for (let i = 0; i < this.buckets.length; i++) this.buckets[i]! += c.buckets[i] ?? 0;
    this.count += c.count;
    this.sumSeconds += c.sumSeconds;
    this.bytes += c.bytes;
  }

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
export type Aggregator = 'sum' | 'max' | 'min' | 'first' | 'average' | 'omit';
interface Sample { readonly labels: Labels; readonly value: number; readonly metricName?: string }

/**
 * A metric whose samples are computed when scraped, in the shape prom-client's Registry formats
 * (registerMetric / getMetricsAsString / getMetricsAsJSON).
 */
export class CollectedMetric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly labelNames: readonly string[],
    private readonly samples: () => Sample[],
    /** How a cluster's workers' samples combine (cluster-metrics.ts): prom-client's aggregator names. */
    readonly aggregator: Aggregator = 'sum',
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() };
  }

  /** The numbers belong to the request path; a registry reset does not clear them. */
  reset(): void {}
}

/** The text format's label escaping (prom-client's, and the exposition format's): backslash, newline, quote. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The per-route families, in the order `formatRouteSeries` writes them. */
export const ROUTE_FAMILIES = [
  { name: 'gantry_requests_total', type: 'counter', help: 'Requests answered, by route, service and status class.' },
  { name: 'gantry_request_duration_seconds', type: 'histogram', help: 'Time from the request to the end of its response, by route and service.' },
  { name: 'gantry_response_body_bytes_total', type: 'counter', help: 'Response body bytes sent to clients, by route and service.' },
] as const;

/**
 * The Prometheus text of the per-route families, formatted here rather than by prom-client's registry, and in slices.
 * Why: with 10 000 routes the registry's per-sample label objects made a scrape block the event loop 1.7-4.1 s
 * (bench:reload); a precomputed label string per series and a turn of the loop between slices keep requests flowing.
 */
export async function formatRouteSeries(series: Iterable<RouteSeries>, slices: SliceClock): Promise<string> {
  const [requests, duration, bytes] = ROUTE_FAMILIES.map((f) => [`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`]) as [string[], string[], string[]];
  for (const s of series) {
    for (let i = 0; i < STATUS_CLASSES.length; i++) {
      if (s.byClass[i]) requests.push(`gantry_requests_total{${s.labels},status_class="${STATUS_CLASSES[i]}"} ${s.byClass[i]}`);
    }
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BOUNDS_S.length; i++) {
      cumulative += s.buckets[i]!;
      duration.push(`gantry_request_duration_seconds_bucket{${s.labels},le="${LATENCY_BOUNDS_S[i]}"} ${cumulative}`);
    }
    duration.push(`gantry_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}`,
      `gantry_request_duration_seconds_sum{${s.labels}} ${s.sumSeconds}`, `gantry_request_duration_seconds_count{${s.labels}} ${s.count}`);
    bytes.push(`gantry_response_body_bytes_total{${s.labels}} ${s.bytes}`);
    if (slices.due()) await slices.pause();
  }
  return `${requests.join('\n')}\n\n${duration.join('\n')}\n\n${bytes.join('\n')}\n`;
}
