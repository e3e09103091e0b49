import { Counter, type Registry } from 'prom-client';
import type { SpanCounts } from '../tracing/tracing-switch.js';

/** What became of the spans the gateway recorded (gateway/tracing/): exported, or dropped without waiting. */
export class TracingMetrics implements SpanCounts {
  readonly #exported: Counter;
  readonly #dropped: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#exported = new Counter({ name: 'gantry_tracing_spans_exported_total', help: 'Spans the OTLP collector accepted.', registers });
    this.#dropped = new Counter({ name: 'gantry_tracing_spans_dropped_total', help: 'Spans dropped: the export queue was full, or the collector refused them or was unreachable.', registers });
  }

  exported(n: number): void {
    this.#exported.inc(n);
  }

  dropped(n: number): void {
    this.#dropped.inc(n);
  }
}
