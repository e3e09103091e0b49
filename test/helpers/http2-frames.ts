import { once } from 'node:events';
import tls from 'node:tls';

/** HTTP/2 frame types (RFC 9113 §6). */
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const CANCEL = 0x8;

/** One frame: 9-byte header (length, type, flags, stream id), then the payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** A GET / HEADERS block in HPACK: static-table :method GET, :scheme https, :path /, and a literal :authority. */
export function getHeaders(streamId: number, authority: string): Buffer {
  const name = Buffer.from(authority);
  const block = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, name.length]), name]);
  return frame(FRAME.HEADERS, END_STREAM | END_HEADERS, streamId, block);
}

export function rstStream(streamId: number): Buffer {
  const code = Buffer.alloc(4);
  code.writeUInt32BE(CANCEL);
  return frame(FRAME.RST_STREAM, 0, streamId, code);
}

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** A raw HTTP/2 connection over TLS (ALPN h2, certificate not checked): frames written as bytes, frames read back. */
export interface RawHttp2 {
  readonly socket: tls.TLSSocket;
  /** Types of the frames received so far; the first GOAWAY's error code and last stream id in `goAway`. */
  readonly received: number[];
  goAway: { readonly code: number; readonly lastStreamId: number } | undefined;
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
}

export async function rawHttp2(port: number, servername: string): Promise<RawHttp2> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: ['h2'], rejectUnauthorized: false });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  const raw: RawHttp2 = { socket, received: [], goAway: undefined, closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const type = pending[3] as number;
      raw.received.push(type);
      if (type === FRAME.GOAWAY) raw.goAway ??= { lastStreamId: pending.readUInt32BE(9) & 0x7fffffff, code: pending.readUInt32BE(9 + 4) };
      pending = pending.subarray(9 + length);
    }
  });
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  return raw;
}
