import type { Logger } from 'pino';
import type { TracingConfig } from '../config/gateway-config.js';
import type { RequestTracer } from './request-spans.js';

/** Where the exporter's outcomes are counted (admin/tracing-metrics.ts). */
export interface SpanCounts {
  /** Spans the collector accepted. */
  exported(n: number): void;
  /** Spans lost: the queue was full, or the collector refused them or could not be reached. */
  dropped(n: number): void;
}

/** A running tracer and its exporter (otel-tracer.ts). */
export interface RunningTracer extends RequestTracer {
  readonly endpoint: string | null;
  readonly maxQueueSize: number;
  /** A reload's new `tracing.sampleRatio`, for the traces the gateway starts from now on. */
  setRatio(ratio: number): void;
  /** Exports what is queued (bounded in time) and stops. */
  shutdown(): Promise<void>;
}

export interface TracingDeps {
  readonly log: Logger;
  readonly counts: SpanCounts;
  /** The gateway's version, for the `service.version` resource attribute. */
  readonly version: string;
}

/**
 * Whether requests are traced, following the serving config: `tracer` is null while `tracing.spans` is off, and the
 * OpenTelemetry SDK (otel-tracer.ts) is imported only when it first goes on, so a gateway that never traces never
 * loads it (test/integration/lazy-modules.test.ts). A reload that changes only the ratio keeps the exporter and its
 * queue; one that changes the endpoint or the queue size starts a new exporter and lets the old one flush and stop.
 */
export class TracingSwitch {
  /** The tracer new requests use; null when tracing is off. Read once per request (handle-request.ts). */
  tracer: RequestTracer | null = null;
  #running: RunningTracer | null = null;
  #wanted: TracingConfig | null = null;

  constructor(private readonly deps: TracingDeps) {}

  /** At start and after each applied reload; resolves once the tracer for `config` is in place. */
  async apply(config: TracingConfig): Promise<void> {
    this.#wanted = config;
    const running = this.#running;
    if (running !== null && config.spans && running.endpoint === config.endpoint && running.maxQueueSize === config.maxQueueSize) {
      running.setRatio(config.sampleRatio);
      return;
    }
    if (!config.spans) {
      if (running !== null) void this.#stop(running);
      return;
    }
    try {
      const { startOtelTracer } = await import('./otel-tracer.js');
      if (this.#wanted !== config) return;   // a later config took over while the SDK loaded
      const next = startOtelTracer(config, this.deps);
      // The old exporter serves until the new one is in place, then flushes what it holds and stops.
      const old = this.#running;
      this.#running = next;
      this.tracer = next;
      if (old !== null) void this.#shutdown(old);
    } catch (err) {
      // Tracing is the operator's view of the traffic, not part of it: requests go on untraced.
      this.deps.log.error({ err, event: 'tracing-start-failed' }, 'tracing: could not start the exporter; requests are not traced');
    }
  }

  /** At shutdown, after the last request: the queued spans go out (bounded in time). */
  async close(): Promise<void> {
    this.#wanted = null;
    const running = this.#running;
    if (running !== null) await this.#stop(running);
  }

  #stop(running: RunningTracer): Promise<void> {
    this.#running = null;
    this.tracer = null;
    return this.#shutdown(running);
  }

  #shutdown(running: RunningTracer): Promise<void> {
    return running.shutdown().catch((err: unknown) => this.deps.log.warn({ err, event: 'tracing-shutdown-failed' }, 'tracing: the exporter did not stop cleanly'));
  }
}
