import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';

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
      const value = hsts.value;
      if (value !== null) {
        const headers = rest[rest.length - 1];
        // The gateway writes its heads as flat [name, value, …] lists (upstream-transport.ts, error-response.ts).
        if (Array.isArray(headers)) withHsts(headers as OutgoingHttpHeader[], value);
        else if (headers !== null && typeof headers === 'object') (headers as OutgoingHttpHeaders)[NAME] = value;
        else this.setHeader(NAME, value);
      }
      return (super.writeHead as (code: number, ...args: unknown[]) => this)(statusCode, ...rest);
    }
  };
}

function withHsts(list: OutgoingHttpHeader[], value: string): void {
  for (let i = list.length - 2; i >= 0; i -= 2) {
    const name = list[i];
    if (typeof name === 'string' && name.length === NAME.length && name.toLowerCase() === NAME) list.splice(i, 2);
  }
  list.push(NAME, value);
}
