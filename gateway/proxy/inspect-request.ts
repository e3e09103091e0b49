import type { IncomingMessage } from 'node:http';
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
  if (req.httpVersionMajor !== 1) return 'GW_ERR_VERSION_NOT_SUPPORTED';
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
