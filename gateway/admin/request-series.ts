import type { SliceClock } from '../runtime/slice-clock.js';
import type { TrafficWindow } from './traffic-window.js';

/**
 * Request counters kept as plain numbers and handed to prom-client only when /metrics is scraped.
 *
 * Why not prom-client children on the hot path: `counter.labels(...)` in prom-client 15 returns `inc` bound to the
 * labels object, and every `inc`/`observe` still validates the labels and rebuilds the hash string of the series
 * (lib/counter.js, lib/histogram.js), so caching children saves nothing. Measured on the 2-core CI VM
 * (bench/RESULTS.md, "Metrics and the load recorder"): a counter inc plus a histogram observe through cached
 * children cost 1.1-1.4 µs per request; RequestMetrics.requestFinished (request-metrics.ts), with the dashboard's window, 0.12-0.16 µs.
 */

/** Status classes, by index: 1xx..5xx, and `aborted` (the client left before a response head was sent). */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const;
const ABORTED = 5;

/** Latency histogram bounds (seconds) exported as `le`: 1 ms to 60 s, the range a gateway's SLOs live in. */
export const LATENCY_BOUNDS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

export function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? ((status / 100) | 0) - 1 : ABORTED;
}

/**
 * Many routes' counts in one typed array, for a cluster worker to send (cluster-metrics.ts): `keys[i]` is
 * `route\nservice`, and its numbers are `values[i * SERIES_WIDTH ...]` (status classes, latency buckets, count, sum,
 * bytes). Why one array: 10 000 routes as objects took the IPC's serialization and parsing hundreds of milliseconds
 * of blocked event loop per scrape; a Float64Array is copied as bytes.
 */
export interface RouteCountsBatch {
  readonly keys: readonly string[];
  readonly values: Float64Array;
}

export const SERIES_WIDTH = STATUS_CLASSES.length + LATENCY_BOUNDS_S.length + 3;

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

  /** Writes the counts at `offset` of a RouteCountsBatch's values. */
  writeTo(values: Float64Array, offset: number): void {
    values.set(this.byClass, offset);
    values.set(this.buckets, offset + this.byClass.length);
    const end = offset + this.byClass.length + this.buckets.length;
    values[end] = this.count;
    values[end + 1] = this.sumSeconds;
    values[end + 2] = this.bytes;
  }

  /** Adds another worker's counts of the same route and service, read at `offset` of a RouteCountsBatch's values. */
  addFrom(values: Float64Array, offset: number): void {
    for (let i = 0; i < this.byClass.length; i++) this.byClass[i]! += values[offset + i]!;
    const b = offset + this.byClass.length;
    for (let i = 0; i < this.buckets.length; i++) this.buckets[i]! += values[b + i]!;
    const end = b + this.buckets.length;
    this.count += values[end]!;
    this.sumSeconds += values[end + 1]!;
    this.bytes += values[end + 2]!;
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

/** The text format's label escaping (prom-client's, and the exposition format's): backslash, newline, quote. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The per-route families, in the order `routeSeriesChunks` writes them, each with the lines of one series. */
export const ROUTE_FAMILIES = [
  {
    name: 'gantry_requests_total', type: 'counter', help: 'Requests answered, by route, service and status class.',
    lines(s: RouteSeries): string {
      let out = '';
      for (let i = 0; i < STATUS_CLASSES.length; i++) {
        if (s.byClass[i]) out += `gantry_requests_total{${s.labels},status_class="${STATUS_CLASSES[i]}"} ${s.byClass[i]}\n`;
      }
      return out;
    },
  },
  {
    name: 'gantry_request_duration_seconds', type: 'histogram', help: 'Time from the request to the end of its response, by route and service.',
    lines(s: RouteSeries): string {
      let out = '';
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BOUNDS_S.length; i++) {
        cumulative += s.buckets[i]!;
        out += `gantry_request_duration_seconds_bucket{${s.labels},le="${LATENCY_BOUNDS_S[i]}"} ${cumulative}\n`;
      }
      return `${out}gantry_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}\n`
        + `gantry_request_duration_seconds_sum{${s.labels}} ${s.sumSeconds}\ngantry_request_duration_seconds_count{${s.labels}} ${s.count}\n`;
    },
  },
  {
    name: 'gantry_response_body_bytes_total', type: 'counter', help: 'Response body bytes sent to clients, by route and service.',
    lines: (s: RouteSeries): string => `gantry_response_body_bytes_total{${s.labels}} ${s.bytes}\n`,
  },
] as const;

const CHUNK_CHARS = 64 * 1024;

/**
 * The Prometheus text of the per-route families, formatted here rather than by prom-client's registry: family by
 * family (each followed by a blank line), in chunks of about 64 KiB, a slice of the event loop at a time.
 * Why: with 10 000 routes the registry's per-sample label objects made a scrape block the event loop 1.7-4.1 s
 * (bench:reload). With 10 000 routes carrying traffic the text is 15 MB; built as one string (joined, measured,
 * encoded at once) a scrape stalled requests by 370 ms, so the caller writes each chunk as it comes.
 */
export async function* routeSeriesChunks(series: readonly RouteSeries[], slices: SliceClock): AsyncGenerator<string> {
  for (const f of ROUTE_FAMILIES) {
    let chunk = `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of series) {
      chunk += f.lines(s);
      if (chunk.length >= CHUNK_CHARS) { yield chunk; chunk = ''; }
      if (slices.due()) await slices.pause();
    }
    yield `${chunk}\n`;
  }
}

/** A Prometheus text exposition, to be written chunk by chunk. */
export interface Exposition {
  readonly contentType: string;
  readonly chunks: AsyncIterable<string>;
}

/** The per-route families, then the text of the registries (read once the routes are written). */
export async function* exposition(series: readonly RouteSeries[], slices: SliceClock, registries: () => Promise<string>): AsyncGenerator<string> {
  yield* routeSeriesChunks(series, slices);
  yield await registries();
}

/** The whole text of an exposition (tests, small tools). */
export async function exposedText(e: Exposition): Promise<string> {
  let text = '';
  for await (const chunk of e.chunks) text += chunk;
  return text;
}
