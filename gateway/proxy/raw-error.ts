import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, type ErrorCode } from '../errors.js';

/**
 * The gateway's JSON error written straight to a socket, for the places where no ServerResponse exists (parser
 * errors, CONNECT, refused upgrades); the connection closes after it.
 */
export function writeRawError(socket: Duplex, code: ErrorCode, requestId: string, requestIdHeader: string, extraHeaders = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { status, message } = ERRORS[code];
  const body = JSON.stringify({ error: code, message, request_id: requestId, route: null });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`
    + `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`
    + `cache-control: no-store\r\n${requestIdHeader}: ${requestId}\r\n${extraHeaders}connection: close\r\n\r\n${body}`);
}
