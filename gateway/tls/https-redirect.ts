import type { Exchange } from '../proxy/exchange.js';

/** ACME HTTP-01 challenges must be answered over plain HTTP (RFC 8555 §8.3): never redirected. */
export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';

/**
 * `tls.redirectHttp` as the plain listener reads it on each request: the HTTPS listener's port, or 0 when plain
 * requests are served as usual. Set by the TLS listener once it is bound and at each reload.
 */
export interface HttpsRedirect {
  port: number;
}

/**
 * Answers a plain request with 308 to the same host and target over HTTPS (308 keeps the method and body, unlike
 * 301). The host is the one routing saw (Host checked by inspect-request.ts), the target the request's own
 * origin-form target; the port is left out when it is 443.
 */
export function redirectToHttps(ex: Exchange, port: number, requestIdHeader: string, draining: boolean): void {
  const req = ex.req;
  const headers = ['location', `https://${ex.host}${port === 443 ? '' : `:${port}`}${req.url as string}`, 'content-length', '0', requestIdHeader, ex.requestId];
  // A body the answer does not wait for is not read: the connection closes after the answer.
  if (draining || ex.closeAfter || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) headers.push('connection', 'close');
  ex.settled = true;
  ex.status = 308;
  ex.res.writeHead(308, headers);
  ex.res.end();
}
