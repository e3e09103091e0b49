import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { ServerLimits } from '../config/gateway-config.js';
import type { ErrorCode } from '../errors.js';
import { parseHost } from './parse-host.js';

export interface InspectedRequest {
  /** Routing host: lower-case, no port; '' for an HTTP/1.0 request without Host. */
  host: string;
  /** The Host value to pass on (the absolute-form authority when the request used one). */
  hostHeader: string;
}

/** The methods the gateway forwards at all (TRACE and CONNECT are answered 405 with this list). */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;

/**
 * The checks Node's parser leaves to us (docs/bad-inputs.md rows 7, 9, 14, 16, 17, 25-27). On success it fills `out`,
 * drops headers with underscores (nginx's default: they alias X-Forwarded-For and friends in CGI-style stacks),
 * rewrites an absolute-form target to origin-form, and returns undefined.
 */
export function inspectRequest(req: IncomingMessage, limits: ServerLimits, out: InspectedRequest): ErrorCode | undefined {
  if (req.httpVersionMajor !== 1) return isHttp2Request(req) ? inspectHttp2Request(req, limits, out) : 'GW_ERR_VERSION_NOT_SUPPORTED';
  const method = req.method as string;
  if (method === 'TRACE' || method === 'CONNECT') return 'GW_ERR_METHOD_NOT_ALLOWED';
  if ((req.url as string).length > limits.maxUriBytes) return 'GW_ERR_URI_TOO_LONG';
  const raw = req.rawHeaders;
  // Node keeps every header (server.maxHeadersCount is 0; maxHeaderSize bounds them): the count is checked here.
  if (raw.length > limits.maxHeaders * 2) return 'GW_ERR_TOO_MANY_HEADERS';

  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    else if (name.includes('_')) delete req.headers[name.toLowerCase()];
  }
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) return 'GW_ERR_BAD_FRAMING';

  let hostHeader = req.headers.host;
  const url = req.url as string;
  if (url.charCodeAt(0) !== 0x2f) {
    const abs = ABSOLUTE_FORM.exec(url);
    if (abs) {
      // RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host, for routing and forwarding alike.
      hostHeader = abs[1] as string;
      req.url = abs[2] || '/';
      hosts = 1;
    } else if (url !== '*' || method !== 'OPTIONS') {
      return 'GW_ERR_BAD_PATH';
    }
  }
  if (hosts > 1) return 'GW_ERR_BAD_HOST';
  if (hostHeader === undefined) {
    if (req.httpVersionMinor !== 0) return 'GW_ERR_BAD_HOST';
    out.host = '';
    out.hostHeader = '';
    return undefined;
  }
  const host = parseHost(hostHeader);
  if (host === null) return 'GW_ERR_BAD_HOST';
  out.host = host;
  out.hostHeader = hostHeader;
  return undefined;
}

/**
 * A request that came over HTTP/2 (an Http2ServerRequest, with its stream), not an HTTP/1 request line that says
 * `HTTP/2.0` (refused with 505). An HTTP/1.x request is told apart by its first comparison.
 */
export function isHttp2Request(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 && (req as unknown as Http2ServerRequest).stream !== undefined;
}

const PSEUDO_HEADERS = [':method', ':path', ':scheme', ':authority', ':protocol'];

/**
 * The same checks for an HTTP/2 request (docs/bad-inputs.md), whose head nghttp2 has already checked for what HTTP/2
 * forbids (connection-specific headers, upper-case names, a missing pseudo-header). `:authority` is the host, as Host
 * is for HTTP/1.1 (RFC 9113 §8.3.1); a Host beside it must name the same. The request is then made to look like an
 * HTTP/1.1 one to the rest of the path: its method and target become plain properties (Node's compatibility request
 * reads them from the pseudo-headers), and the pseudo-headers are unset so they are never forwarded.
 */
function inspectHttp2Request(req: IncomingMessage, limits: ServerLimits, out: InspectedRequest): ErrorCode | undefined {
  const headers = req.headers;
  const method = headers[':method'] as string;
  const url = headers[':path'] as string | undefined;
  const authority = headers[':authority'] as string | undefined;
  Object.defineProperty(req as unknown as Http2ServerRequest, 'method', { value: method, writable: true });
  Object.defineProperty(req as unknown as Http2ServerRequest, 'url', { value: url ?? '', writable: true });
  for (const name of PSEUDO_HEADERS) if (headers[name] !== undefined) headers[name] = undefined;
  if (method === 'TRACE' || method === 'CONNECT') return 'GW_ERR_METHOD_NOT_ALLOWED';
  if (url === undefined) return 'GW_ERR_BAD_PATH';
  if (url.length > limits.maxUriBytes) return 'GW_ERR_URI_TOO_LONG';
  const raw = req.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) === 0x3a) continue;
    count++;
    if (name.includes('_')) delete headers[name];
  }
  if (count > limits.maxHeaders) return 'GW_ERR_TOO_MANY_HEADERS';
  if (url.charCodeAt(0) !== 0x2f && (url !== '*' || method !== 'OPTIONS')) return 'GW_ERR_BAD_PATH';
  const hostHeader = authority ?? headers.host;
  if (hostHeader === undefined) return 'GW_ERR_BAD_HOST';
  const host = parseHost(hostHeader);
  if (host === null) return 'GW_ERR_BAD_HOST';
  if (authority !== undefined && headers.host !== undefined && parseHost(headers.host) !== host) return 'GW_ERR_BAD_HOST';
  out.host = host;
  out.hostHeader = hostHeader;
  return undefined;
}
