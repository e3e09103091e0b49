import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { OTLP_TRACE_PROTO } from '../fixtures/otlp-trace-proto.js';

/**
 * A stand-in for an OpenTelemetry collector (none is packaged here): an OTLP/HTTP receiver on 127.0.0.1 that decodes
 * each POST /v1/traces body with the OpenTelemetry protocol's own message definitions (test/fixtures/otlp-trace-proto.ts)
 * through protobufjs, and keeps the spans.
 */

export type AttributeValue = string | number | boolean | null;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** SPAN_KIND_SERVER, SPAN_KIND_CLIENT, … */
  readonly kind: string;
  readonly attributes: Record<string, AttributeValue>;
  readonly events: { readonly name: string; readonly attributes: Record<string, AttributeValue> }[];
  /** STATUS_CODE_UNSET, STATUS_CODE_ERROR, … */
  readonly status: string;
  readonly resource: Record<string, AttributeValue>;
  readonly scope: string;
}

export interface OtlpReceiver {
  /** The traces URL (…/v1/traces). */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Export requests received. */
  requests: number;
  close(): Promise<void>;
}

interface KeyValue { key: string; value?: Record<string, unknown> }

function valueOf(v: Record<string, unknown> | undefined): AttributeValue {
  if (v === undefined) return null;
  if (typeof v.stringValue === 'string') return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (typeof v.doubleValue === 'number') return v.doubleValue;
  if (typeof v.boolValue === 'boolean') return v.boolValue;
  return null;
}

const attributesOf = (list: KeyValue[] | undefined): Record<string, AttributeValue> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, valueOf(kv.value)]));

const hex = (b: unknown): string => (b instanceof Uint8Array ? Buffer.from(b).toString('hex') : '');

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const root = protobuf.parse(OTLP_TRACE_PROTO).root;
  const request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const spans: ReceivedSpan[] = [];
  const receiver = { spans, requests: 0 } as { spans: ReceivedSpan[]; requests: number };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/x-protobuf') {
        res.writeHead(415).end();
        return;
      }
      receiver.requests++;
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const decoded = request.toObject(request.decode(body), { enums: String, longs: String, bytes: Buffer }) as {
        resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { scope?: { name?: string }; spans?: Record<string, unknown>[] }[] }[];
      };
      for (const rs of decoded.resourceSpans ?? []) {
        const resource = attributesOf(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), name: s.name as string,
              kind: s.kind as string, attributes: attributesOf(s.attributes as KeyValue[]),
              events: ((s.events ?? []) as { name: string; attributes?: KeyValue[] }[]).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
              status: ((s.status as { code?: string } | undefined)?.code) ?? 'STATUS_CODE_UNSET', resource, scope: ss.scope?.name ?? '',
            });
          }
        }
      }
      // An empty ExportTraceServiceResponse: everything accepted.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/v1/traces`,
    close: async () => { server.closeAllConnections(); server.close(); await once(server, 'close'); },
  });
}
