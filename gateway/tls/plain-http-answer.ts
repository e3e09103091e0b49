import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { RequestHandlers } from '../proxy/handle-request.js';
import { writeRawError } from '../proxy/raw-error.js';
import { requestIdFrom } from '../proxy/request-id.js';

/**
 * A plain HTTP request sent to the TLS port (`http://host:8443/`) is told so, as nginx and Go's servers tell it,
 * instead of meeting a connection closed without a word. OpenSSL recognises the request line before any TLS is spoken
 * (ERR_SSL_HTTP_REQUEST), so the answer goes out unencrypted on the TCP socket under the TLS one, which Node keeps as
 * the server-side TLSSocket's `_parent` (not in its types: without it the connection just closes, as before).
 */
export function answerPlainHttpOnTlsPort(err: NodeJS.ErrnoException, socket: TLSSocket, handlers: RequestHandlers): void {
  if (err.code !== 'ERR_SSL_HTTP_REQUEST') return;
  const tcp = (socket as TLSSocket & { _parent?: Socket | null })._parent;
  if (!tcp || tcp.destroyed || !tcp.writable) return;
  tcp.on('error', () => tcp.destroy());
  writeRawError(tcp, 'GW_ERR_HTTPS_REQUIRED', requestIdFrom(undefined), handlers.requestIdHeader());
  handlers.answeredOnSocket('GW_ERR_HTTPS_REQUIRED');
}
