import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** The Strict-Transport-Security value the HTTPS listener's answers carry now (`tls.hsts`); null: none. */
export interface HstsSetting {
  value: string | null;
}

const NAME = 'strict-transport-security';

/**
 * The HTTPS server's response class (`ServerResponse` option of https.createServer): every answer it writes, the
 * gateway's own and the upstreams' relayed, carries the configured Strict-Transport-Security, replacing an upstream's.
 * The plain listener keeps Node's class, so plain answers never carry it (RFC 6797 §7.2) and pay nothing for it.
 */
export function hstsResponseClass(hsts: HstsSetting): typeof ServerResponse {
  return class HstsResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
    override writeHead(statusCode: number, ...rest: unknown[]): this {
      if (hsts.value !== null) addHsts(this, rest, hsts.value);
      return (super.writeHead as (code: number, ...args: unknown[]) => this)(statusCode, ...rest);
    }
  };
}

/** The same for HTTP/2 answers (`Http2ServerResponse` option of http2.createSecureServer). */
export function hstsHttp2ResponseClass(hsts: HstsSetting): typeof Http2ServerResponse {
  return class HstsHttp2Response<Request extends Http2ServerRequest = Http2ServerRequest> extends Http2ServerResponse<Request> {
    override writeHead(statusCode: number, ...rest: unknown[]): this {
      if (hsts.value !== null) addHsts(this, rest, hsts.value);
      return (super.writeHead as (code: number, ...args: unknown[]) => this)(statusCode, ...rest);
    }
  };
}

/** Puts the header into writeHead's arguments (after the status code), whichever form they take. */
function addHsts(res: { setHeader(name: string, value: string): unknown }, rest: unknown[], value: string): void {
  const headers = rest[rest.length - 1];
  // The gateway writes its heads as flat [name, value, …] lists (upstream-transport.ts, error-response.ts).
  if (Array.isArray(headers)) withHsts(headers as OutgoingHttpHeader[], value);
  else if (headers !== null && typeof headers === 'object') (headers as OutgoingHttpHeaders)[NAME] = value;
  else res.setHeader(NAME, value);
}

function withHsts(list: OutgoingHttpHeader[], value: string): void {
  for (let i = list.length - 2; i >= 0; i -= 2) {
    const name = list[i];
    if (typeof name === 'string' && name.length === NAME.length && name.toLowerCase() === NAME) list.splice(i, 2);
  }
  list.push(NAME, value);
}
