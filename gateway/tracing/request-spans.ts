import type { Exchange } from '../proxy/exchange.js';
import type { Attempt } from '../proxy/upstream-attempt.js';
import type { EndpointState } from '../upstream/endpoint-state.js';

/**
 * What the request path sees of tracing (docs/observability.md): plain interfaces, so the path loads no
 * OpenTelemetry module; gateway/tracing/otel-tracer.ts implements them with the OpenTelemetry SDK, loaded only when
 * `tracing.spans` is on (tracing-switch.ts). With tracing off the path holds null and pays one null check per step.
 */
export interface RequestTracer {
  /** The server span of a request that just arrived, its parent the request's valid traceparent if any. */
  start(ex: Exchange): RequestSpans;
}

/** One request's spans: its server span, and a client span per try as a child of it. */
export interface RequestSpans {
  /** The trace's id (32 hex digits): the access log's `traceId`. */
  readonly traceId: string;
  /** A try starts against `endpoint`: its client span, whose id the upstream gets in its traceparent. */
  tryStarted(ex: Exchange, endpoint: EndpointState): TrySpan;
  /** A moment on the server span: a breaker rejection, a held (scale-from-zero) wait and its end. */
  event(name: string, attributes?: Readonly<Record<string, string | number>>): void;
  /** The response closed (`aborted`: before it was complete): the server span ends with what the request became. */
  end(ex: Exchange, aborted: boolean): void;
}

/** One try's client span. */
export interface TrySpan {
  /** The traceparent header the upstream gets for this try: the trace, this span's id, the sampled flag. */
  readonly traceparent: string;
  /** The try failed (a failure kind of resilience/attempt-failure.ts: `connect`, `timeout`, `reset`, …). */
  failed(kind: string): void;
  /** The try is over for its endpoint: the span ends with the answer's status, or the failure. */
  end(a: Attempt): void;
}
