import type { IncomingHttpHeaders } from 'node:http';

const GRPC_TYPE = 'application/grpc';

/**
 * A gRPC call: `content-type: application/grpc`, or `application/grpc+proto` and the like. gRPC-Web
 * (`application/grpc-web`) is HTTP/1.1-shaped and not one.
 */
export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  if (type === undefined || !type.startsWith(GRPC_TYPE)) return false;
  const next = type[GRPC_TYPE.length];
  return next === undefined || next === '+' || next === ';';
}

// The gRPC timeout units (doc/PROTOCOL-HTTP2.md of grpc/grpc): hours to nanoseconds, as milliseconds.
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/**
 * The deadline of a call through a `protocol: h2` service: its `grpc-timeout` (1 to 8 digits and a unit) when that
 * is shorter than the route's, so the gateway gives up when the client does. At least 1 ms; a malformed value is
 * ignored (the route's deadline stands), as the upstream will judge it too.
 */
export function grpcDeadlineMs(headers: IncomingHttpHeaders, routeTimeoutMs: number): number {
  const value = headers['grpc-timeout'];
  if (typeof value !== 'string') return routeTimeoutMs;
  const m = GRPC_TIMEOUT.exec(value);
  if (m === null) return routeTimeoutMs;
  const ms = Math.max(1, Math.ceil(Number(m[1]) * (UNIT_MS[m[2] as string] as number)));
  return ms < routeTimeoutMs ? ms : routeTimeoutMs;
}

/** `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%` itself. */
export function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

const STATUS_FIELDS: ReadonlySet<string> = new Set(['grpc-status', 'grpc-message', 'grpc-status-details-bin']);

/**
 * Takes the status fields out of a gRPC Trailers-Only answer's head (`name, value, …`, lower-case names) and returns
 * them, to be relayed as trailers: Node's compatibility API cannot end a stream with a head it relays (it waits for
 * trailers), and a gRPC client reads a status in a head that did not end the stream as no status at all.
 */
export function takeGrpcStatus(headers: string[]): Record<string, string> {
  const status: Record<string, string> = {};
  let kept = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (STATUS_FIELDS.has(name)) status[name] = headers[i + 1] as string;
    else { headers[kept++] = name; headers[kept++] = headers[i + 1] as string; }
  }
  headers.length = kept;
  return status;
}
