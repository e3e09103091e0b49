import type { IncomingMessage } from 'node:http';
import { isIP, type BlockList } from 'node:net';

/** An IPv4 client on a dual-stack listener shows as `::ffff:a.b.c.d`: rules are written for a.b.c.d. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function familyOf(address: string): 'ipv4' | 'ipv6' {
  return address.includes(':') ? 'ipv6' : 'ipv4';
}

/**
 * The client's address as `server.trustedProxies` decides it: the socket's peer, unless the peer is a trusted proxy;
 * then X-Forwarded-For is read from the right, past every trusted proxy, and the first address that is not one is
 * the client (what a trusted proxy appended is believed, what the client wrote before it is not). An entry that is
 * not an address stops the walk at the last proxy that vouched for it.
 */
export function clientAddress(req: IncomingMessage, trusted: BlockList | null): string {
  const peer = unmapped(req.socket.remoteAddress ?? '');
  if (trusted === null || !trusted.check(peer, familyOf(peer))) return peer;
  const xff = req.headers['x-forwarded-for'];
  if (xff === undefined || xff === '') return peer;
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  let last = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = unmapped((hops[i] as string).trim());
    if (isIP(hop) === 0) return last;
    if (!trusted.check(hop, familyOf(hop))) return hop;
    last = hop;
  }
  return last;
}

/** An address or CIDR block (`10.0.0.0/8`, `::1`, `2001:db8::/32`), or null when it is neither. */
export function parseCidr(value: string): { address: string; prefix: number | undefined; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', bits, extra] = value.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return null;
  const family = version === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) return { address, prefix: undefined, family };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (version === 6 ? 128 : 32)) return null;
  return { address, prefix: Number(bits), family };
}
