import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIP, connect } from 'node:net';

/**
 * A minimal DNS client for SRV questions (RFC 1035 wire format, RFC 2782 records). It exists for one reason: Node's
 * resolver returns SRV records without their TTL, and the gateway re-resolves when the TTL says so. UDP first; a
 * truncated answer is asked again over TCP. A and AAAA stay with Node's resolver, which gives their TTLs.
 */

export interface DnsServer { readonly host: string; readonly port: number }

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  /** Lower-case, without the trailing dot; "." (RFC 2782: the service is decidedly not available) becomes "". */
  readonly target: string;
  readonly ttlS: number;
}

export class DnsQueryError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'DnsQueryError';
  }
}

const TYPE_SRV = 33;
const TYPE_CNAME = 5;
const RCODES: Record<number, string> = { 1: 'EFORMERR', 2: 'ESERVFAIL', 3: 'ENOTFOUND', 4: 'ENOTIMP', 5: 'EREFUSED' };

/** "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353": the forms dns.getServers() returns and setServers() takes. */
export function parseDnsServer(text: string): DnsServer {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1] as string, port: Number(bracketed[2] ?? 53) };
  if (isIP(text) === 6) return { host: text, port: 53 };
  const [host, port] = text.split(':');
  if (isIP(host ?? '') !== 4) throw new Error(`"${text}" is not an IP address with an optional port`);
  return { host: host as string, port: Number(port ?? 53) };
}

export function encodeQuery(id: number, name: string, type: number): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];   // RD, one question
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length > 63) throw new DnsQueryError('EBADNAME', `label "${label}" is longer than 63 bytes`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, 1]));   // root, QTYPE, QCLASS IN
  return Buffer.concat(parts);
}

/** Reads a (possibly compressed) name at `offset`; returns it and the offset after it in the record. */
function readName(buf: Buffer, offset: number): [string, number] {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  for (let jumps = 0; ; ) {
    const len = buf.readUInt8(pos);
    if (len === 0) { pos++; break; }
    if ((len & 0xc0) === 0xc0) {
      if (++jumps > 32) throw new DnsQueryError('EBADRESP', 'compression loop');
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | buf.readUInt8(pos + 1);
      continue;
    }
    labels.push(buf.toString('ascii', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return [labels.join('.').toLowerCase(), end < 0 ? pos : end];
}

/** Parses an answer to `encodeQuery(id, …, SRV)`. Throws DnsQueryError on a server error or an empty answer. */
export function parseSrvResponse(buf: Buffer, id: number, name: string): { records: SrvRecord[]; truncated: boolean } {
  if (buf.length < 12 || buf.readUInt16BE(0) !== id) throw new DnsQueryError('EBADRESP', 'answer to another question');
  const flags = buf.readUInt16BE(2);
  const truncated = (flags & 0x0200) !== 0;
  const rcode = flags & 0x000f;
  if (rcode !== 0) throw new DnsQueryError(RCODES[rcode] ?? 'EBADRESP', `${name} SRV: ${RCODES[rcode] ?? `rcode ${rcode}`}`);
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  let pos = 12;
  for (let i = 0; i < qd; i++) {
    const [qname, next] = readName(buf, pos);
    if (qname !== name.replace(/\.$/, '').toLowerCase()) throw new DnsQueryError('EBADRESP', 'answer to another question');
    pos = next + 4;
  }
  const records: SrvRecord[] = [];
  let cnameTtl = Infinity;
  for (let i = 0; i < an; i++) {
    const [, afterName] = readName(buf, pos);
    const type = buf.readUInt16BE(afterName);
    const ttlS = buf.readUInt32BE(afterName + 4);
    const rdlength = buf.readUInt16BE(afterName + 8);
    const rdata = afterName + 10;
    if (type === TYPE_SRV) {
      const [target] = readName(buf, rdata + 6);
      records.push({ priority: buf.readUInt16BE(rdata), weight: buf.readUInt16BE(rdata + 2), port: buf.readUInt16BE(rdata + 4), target, ttlS });
    } else if (type === TYPE_CNAME) {
      cnameTtl = Math.min(cnameTtl, ttlS);   // an alias expires the answer as surely as the record itself
    }
    pos = rdata + rdlength;
  }
  if (!records.length && !truncated) throw new DnsQueryError('ENODATA', `${name} SRV: no records`);
  return { records: records.map((r) => (r.ttlS > cnameTtl ? { ...r, ttlS: cnameTtl } : r)), truncated };
}

function askUdp(server: DnsServer, query: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    const done = (err: Error | null, buf?: Buffer) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.close();
      if (err) reject(err); else resolve(buf as Buffer);
    };
    const onAbort = () => done(new DnsQueryError('ECANCELLED', 'query cancelled'));
    const timer = setTimeout(() => done(new DnsQueryError('ETIMEOUT', `no answer from ${server.host}:${server.port} in ${timeoutMs} ms`)), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => done(new DnsQueryError((err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED', err.message)));
    socket.on('message', (msg, from) => {
      // Only the server asked, and only this query's id: anything else is ignored, not trusted.
      if (from.port === server.port && msg.length >= 2 && msg.readUInt16BE(0) === id) done(null, msg);
    });
    socket.connect(server.port, server.host, () => socket.send(query));
  });
}

function askTcp(server: DnsServer, query: Buffer, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    let data = Buffer.alloc(0);
    const done = (err: Error | null, buf?: Buffer) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err); else resolve(buf as Buffer);
    };
    const onAbort = () => done(new DnsQueryError('ECANCELLED', 'query cancelled'));
    const timer = setTimeout(() => done(new DnsQueryError('ETIMEOUT', `no TCP answer from ${server.host}:${server.port} in ${timeoutMs} ms`)), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => done(new DnsQueryError((err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED', err.message)));
    socket.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      socket.write(Buffer.concat([len, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) done(null, data.subarray(2, 2 + data.readUInt16BE(0)));
    });
    socket.on('end', () => done(new DnsQueryError('EBADRESP', 'connection closed before a whole answer')));
  });
}

/**
 * Asks each server in turn, `tries` rounds, until one answers. An authoritative "no such name" is an answer (it is
 * thrown at once); a timeout or a refused socket moves on to the next server.
 */
export async function querySrv(name: string, servers: readonly DnsServer[], options: { timeoutMs: number; tries: number }, signal: AbortSignal): Promise<SrvRecord[]> {
  let last: unknown = new DnsQueryError('ECONNREFUSED', 'no DNS server configured');
  for (let round = 0; round < options.tries; round++) {
    for (const server of servers) {
      if (signal.aborted) throw new DnsQueryError('ECANCELLED', 'query cancelled');
      const id = randomInt(0, 65536);
      const query = encodeQuery(id, name, TYPE_SRV);
      try {
        const udp = parseSrvResponse(await askUdp(server, query, options.timeoutMs, signal), id, name);
        if (!udp.truncated) return udp.records;
        return parseSrvResponse(await askTcp(server, query, options.timeoutMs, signal), id, name).records;
      } catch (err) {
        const code = (err as DnsQueryError).code;
        if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'ECANCELLED') throw err;
        last = err;
      }
    }
  }
  throw last;
}
