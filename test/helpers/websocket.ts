import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One WebSocket frame (RFC 6455 §5.2), text opcode, payload < 126 bytes; masked as a client must. */
export function encodeFrame(text: string, masked: boolean): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error('test frames are short');
  const mask = masked ? randomBytes(4) : Buffer.alloc(0);
  const head = Buffer.from([0x81, (masked ? 0x80 : 0) | payload.length]);
  const body = masked ? payload.map((b, i) => b ^ (mask[i % 4] as number)) : payload;
  return Buffer.concat([head, mask, body]);
}

export function decodeFrame(buf: Buffer): string | null {
  if (buf.length < 2) return null;
  const masked = ((buf[1] as number) & 0x80) !== 0;
  const len = (buf[1] as number) & 0x7f;
  const start = 2 + (masked ? 4 : 0);
  if (buf.length < start + len) return null;
  const payload = buf.subarray(start, start + len);
  if (!masked) return payload.toString();
  const mask = buf.subarray(2, 6);
  return Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number))).toString();
}

/** A real WebSocket echo server: completes the handshake and echoes each text frame back, prefixed with "echo:". */
export async function startWebSocketEcho(): Promise<{ port: number; server: http.Server; upgrades: http.IncomingHttpHeaders[]; close(): Promise<void> }> {
  const upgrades: http.IncomingHttpHeaders[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => { res.writeHead(426); res.end(); });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    upgrades.push(req.headers);
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('end', () => socket.destroy());
    socket.once('close', () => sockets.delete(socket));
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (chunk: Buffer) => {
      const text = decodeFrame(chunk);
      if (text !== null) socket.write(encodeFrame(`echo:${text}`, false));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port, server, upgrades,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** Opens a WebSocket through `port` and returns the handshake answer and a way to exchange frames. */
export async function openWebSocket(port: number, path: string): Promise<{ head: string; socket: net.Socket; send(text: string): Promise<string> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const key = randomBytes(16).toString('base64');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buffered = Buffer.alloc(0);
  const head = await new Promise<string>((resolve) => {
    const onData = (c: Buffer) => {
      buffered = Buffer.concat([buffered, c]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end >= 0) {
        socket.off('data', onData);
        const text = buffered.subarray(0, end).toString();
        buffered = buffered.subarray(end + 4);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(buffered.toString()));
  });
  return {
    head, socket,
    send: (text) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo within 2 s')), 2000);
      socket.once('data', (c: Buffer) => { clearTimeout(timer); resolve(decodeFrame(c) ?? ''); });
      socket.write(encodeFrame(text, true));
    }),
  };
}

export type HandshakeAnswer =
  | { readonly status: 101; readonly headers: http.IncomingHttpHeaders; readonly socket: net.Socket }
  | { readonly status: number; readonly headers: http.IncomingHttpHeaders; readonly body: string };

/**
 * Sends a WebSocket handshake through `port` with Node's HTTP client, which checks the answer's framing, and
 * resolves with the 101 (and its socket) or the whole other answer; rejects when none came within `boundMs`.
 */
export function webSocketHandshake(port: number, path: string, headers: Record<string, string> = {}, boundMs = 5000): Promise<HandshakeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path, agent: false,
      headers: { host: 'ws.test', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': randomBytes(16).toString('base64'), 'sec-websocket-version': '13', ...headers },
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`no handshake answer within ${boundMs} ms`)); }, boundMs);
    req.on('upgrade', (res, socket: net.Socket) => { clearTimeout(timer); resolve({ status: 101, headers: res.headers, socket }); });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode as number, headers: res.headers, body }); });
      res.on('error', (err) => { clearTimeout(timer); reject(err); });
    });
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.end();
  });
}
