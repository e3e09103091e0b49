import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, resourceAttributesEnvDetector, resourceFromAttributes, serviceNameEnvDetector } from '@opentelemetry/resources';
import {
  AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TracerProvider,
  type ReadableSpan, type SpanExporter, type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { TracingConfig } from '../config/gateway-config.js';
import type { Exchange } from '../proxy/exchange.js';
import { createTraceparent, parseTraceparent } from '../proxy/trace-context.js';
import type { Attempt } from '../proxy/upstream-attempt.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { RequestSpans, TrySpan } from './request-spans.js';
import type { RunningTracer, SpanCounts, TracingDeps } from './tracing-switch.js';

/**
 * Spans of the gateway's requests with the OpenTelemetry JS SDK, exported over OTLP/HTTP (protobuf) by the SDK's
 * exporter: a server span per request and a client span per upstream try (docs/observability.md). Imported only when
 * `tracing.spans` is on (tracing-switch.ts).
 *
 * Contexts are passed explicitly (the request's parent, then the server span), so no context manager or
 * AsyncLocalStorage runs on the request path. Exports never wait on the request path: ended spans go to a batch
 * processor behind a bounded count (BoundedBatch); past it, and whatever the collector does not accept, is dropped and
 * counted (gantry_tracing_spans_dropped_total).
 */

/** The batch processor's delay between exports: OTEL_BSP_SCHEDULE_DELAY (ms), as the OpenTelemetry SDKs read it, or 5 s. */
function scheduledDelayMs(): number {
  const ms = Number(process.env.OTEL_BSP_SCHEDULE_DELAY);
  return Number.isFinite(ms) && ms >= 0 && process.env.OTEL_BSP_SCHEDULE_DELAY !== '' ? ms : 5_000;
}

/** How long an export may take (the exporter's timeout) and how long a shutdown waits for the last one. */
const EXPORT_TIMEOUT_MS = 5_000;
const SHUTDOWN_WAIT_MS = 3_000;

/**
 * A request whose trace is not sampled (its caller's flag says so, or the ratio did not pick the trace the gateway
 * starts): no SDK span, nothing recorded or exported, one object for the request and all its tries. The trace goes on
 * unsampled: the upstream gets the trace id, one span id of the gateway's and the flag 00, and the access log the id.
 * Most requests take this way at a low ratio, so it is kept to the cost of a traceparent.
 */
class UnsampledSpans implements RequestSpans, TrySpan {
  readonly traceparent: string;

  /** `spanId`: the id the gateway's tries go under (nothing records it: one for them all). */
  constructor(readonly traceId: string, spanId: string) {
    this.traceparent = `00-${traceId}-${spanId}-00`;
  }

  tryStarted(): TrySpan {
    return this;
  }

  event(): void {}
  failed(): void {}
  end(): void {}
}

/** The exporter, its outcomes counted: a batch the collector did not take is lost (the SDK does not retry it later). */
class CountingExporter implements SpanExporter {
  #failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly settled: (n: number, ok: boolean) => void,
    private readonly deps: TracingDeps,
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      this.settled(spans.length, ok);
      // Once per outage, not once per batch: a collector that is down would fill the log.
      if (!ok && !this.#failing) this.deps.log.warn({ event: 'tracing-export-failed', endpoint: this.endpoint, err: result.error }, 'tracing: the collector did not take a batch of spans; spans are dropped (and counted) until it does');
      else if (ok && this.#failing) this.deps.log.info({ event: 'tracing-export-resumed', endpoint: this.endpoint }, 'tracing: the collector takes spans again');
      this.#failing = !ok;
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * The SDK's BatchSpanProcessor behind a count of the spans it holds or is exporting: at `maxQueueSize` a span is
 * dropped here and counted, where the SDK's own limit drops it without a trace.
 */
class BoundedBatch implements SpanProcessor {
  readonly #batch: BatchSpanProcessor;
  #held = 0;

  constructor(exporter: SpanExporter, private readonly maxQueueSize: number, private readonly counts: SpanCounts, deps: TracingDeps, endpoint: string) {
    const counting = new CountingExporter(exporter, (n, ok) => {
      this.#held -= n;
      if (ok) counts.exported(n);
      else counts.dropped(n);
    }, deps, endpoint);
    this.#batch = new BatchSpanProcessor({
      exporter: counting, maxQueueSize, maxExportBatchSize: Math.min(512, maxQueueSize), exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      scheduledDelayMillis: scheduledDelayMs(),
    });
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.#held >= this.maxQueueSize) {
      this.counts.dropped(1);
      return;
    }
    this.#held++;
    this.#batch.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.#batch.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#batch.shutdown();
  }
}

/** The traceparent an upstream gets for a try: version 00, the trace, the try's span id, the sampled flag. */
function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & TraceFlags.SAMPLED) === 0 ? '00' : '01'}`;
}

class ClientTry implements TrySpan {
  readonly traceparent: string;
  #failure = '';

  constructor(private readonly span: Span) {
    this.traceparent = traceparentOf(span);
  }

  failed(kind: string): void {
    this.#failure = kind;
  }

  end(a: Attempt): void {
    const span = this.span;
    if (span.isRecording()) {
      if (a.statusCode > 0) span.setAttribute('http.response.status_code', a.statusCode);
      // What became of the try: its answer went to the client, or it failed, or it was dropped for a retry.
      const outcome = this.#failure !== '' ? this.#failure : a.broken ? 'cut' : a.relaying ? 'relayed' : 'dropped';
      span.setAttribute('gantry.outcome', outcome);
      if (this.#failure !== '' || a.statusCode >= 500 || a.broken) {
        span.setAttribute('error.type', this.#failure !== '' ? this.#failure : a.broken ? 'cut' : String(a.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
  }
}

class ServerSpans implements RequestSpans {
  readonly traceId: string;
  readonly #context: Context;

  constructor(private readonly tracer: Tracer, private readonly span: Span) {
    this.traceId = span.spanContext().traceId;
    this.#context = trace.setSpan(ROOT_CONTEXT, span);
  }

  tryStarted(ex: Exchange, endpoint: EndpointState): TrySpan {
    const method = ex.req.method as string;
    const span = this.tracer.startSpan(method, { kind: SpanKind.CLIENT }, this.#context);
    if (span.isRecording()) {
      const attributes: Attributes = {
        'http.request.method': method, 'server.address': endpoint.target.host, 'server.port': endpoint.target.port,
        'url.full': `${endpoint.address.endsWith('/') ? endpoint.address.slice(0, -1) : endpoint.address}${ex.req.url as string}`,
        'gantry.service': endpoint.service, 'gantry.endpoint': endpoint.address,
      };
      if (ex.attempts > 1) attributes['http.request.resend_count'] = ex.attempts - 1;
      span.setAttributes(attributes);
    }
    return new ClientTry(span);
  }

  event(name: string, attributes?: Readonly<Record<string, string | number>>): void {
    this.span.addEvent(name, attributes);
  }

  end(ex: Exchange, aborted: boolean): void {
    const span = this.span;
    if (span.isRecording()) {
      const req = ex.req;
      const method = req.method as string;
      const attributes: Attributes = {
        'http.request.method': method, 'url.path': ex.path || (req.url as string), 'url.scheme': ex.http2 || (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http',
        'network.protocol.version': ex.http2 ? '2' : req.httpVersion, 'gantry.request_id': ex.requestId,
      };
      if (ex.host) attributes['server.address'] = ex.host;
      if (ex.status > 0) attributes['http.response.status_code'] = ex.status;
      const route = ex.route;
      if (route !== undefined) {
        attributes['http.route'] = route.name;
        attributes['gantry.service'] = route.service;
        span.updateName(`${method} ${route.name}`);
      }
      if (ex.endpoint !== undefined) attributes['gantry.endpoint'] = ex.endpoint.address;
      if (ex.attempts > 1) attributes['gantry.attempts'] = ex.attempts;
      const error = ex.errorCode ?? (aborted ? 'aborted' : ex.status >= 500 ? String(ex.status) : undefined);
      if (error !== undefined) attributes['error.type'] = error;
      span.setAttributes(attributes);
      if (ex.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}

class OtelTracer implements RunningTracer {
  readonly endpoint: string | null;
  readonly maxQueueSize: number;
  /** The share of the traces the gateway starts that are sampled (a reload changes it). */
  #ratio: number;
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;

  constructor(config: TracingConfig, deps: TracingDeps) {
    this.endpoint = config.endpoint;
    this.maxQueueSize = config.maxQueueSize;
    this.#ratio = config.sampleRatio;
    // The endpoint from routes.yaml, else the exporter's own reading of OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and
    // OTEL_EXPORTER_OTLP_ENDPOINT (plus /v1/traces), else http://localhost:4318/v1/traces.
    const exporter = new OTLPTraceExporter({ url: config.endpoint ?? undefined, timeoutMillis: EXPORT_TIMEOUT_MS });
    // service.name `gantry` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise (the latter merged last).
    const resource = defaultResource()
      .merge(resourceFromAttributes({ 'service.name': 'gantry', 'service.version': deps.version }))
      .merge(detectResources({ detectors: [resourceAttributesEnvDetector, serviceNameEnvDetector] }));
    this.#provider = new TracerProvider({
      resource,
      // Parent-based: a request's sampled flag decides for its trace. The ratio is applied in start(), before the SDK
      // is asked: a trace that reaches it as a root was picked already.
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      spanProcessors: [new BoundedBatch(exporter, config.maxQueueSize, deps.counts, deps, config.endpoint ?? 'OTEL_EXPORTER_OTLP_ENDPOINT')],
    });
    this.#tracer = this.#provider.getTracer('gantry', deps.version);
  }

  start(ex: Exchange): RequestSpans {
    const parent = parseTraceparent(ex.req.headers.traceparent);
    if (parent === null) {
      const ratio = this.#ratio;
      if (!(ratio >= 1 || (ratio > 0 && Math.random() < ratio))) {
        const ids = createTraceparent(false);
        return new UnsampledSpans(ids.traceId, ids.parentId);
      }
    } else if ((Number.parseInt(parent.flags, 16) & TraceFlags.SAMPLED) === 0) {
      return new UnsampledSpans(parent.traceId, createTraceparent(false).parentId);
    }
    const context = parent === null ? ROOT_CONTEXT
      : trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.parentId, isRemote: true, traceFlags: TraceFlags.SAMPLED });
    // Started at the request's arrival (a performance.now() time, which the SDK takes as such).
    const span = this.#tracer.startSpan(ex.req.method as string, { kind: SpanKind.SERVER, startTime: ex.startMs }, context);
    return new ServerSpans(this.#tracer, span);
  }

  setRatio(ratio: number): void {
    this.#ratio = ratio;
  }

  async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#provider.shutdown(),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, SHUTDOWN_WAIT_MS); }),
    ]);
    clearTimeout(timer);
  }
}

export function startOtelTracer(config: TracingConfig, deps: TracingDeps): RunningTracer {
  return new OtelTracer(config, deps);
}
