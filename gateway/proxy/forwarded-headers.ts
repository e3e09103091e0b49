import type { IncomingHttpHeaders } from 'node:http';
import type { BlockList } from 'node:net';

// Hop-by-hop headers (RFC 9110 §7.6.1) plus ones that only make sense between client and gateway: `expect` is
// answered by the gateway itself, and the upstream client frames the body itself (chunked when its length is not
// known), so the client's `transfer-encoding` goes too (undici refuses to send it).
const REQUEST_HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'expect', 'transfer-encoding']);
// What an untrusted client may not tell the upstream about the path its request took.
const CLIENT_FORWARDING: ReadonlySet<string> = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip']);
const PROTECTED = new Set(['host', 'content-length', 'transfer-encoding']);

/** The header names a Connection value lists, lower-cased; a single name (`keep-alive`, `close`) without a split. */
function connectionNames(value: string): string[] {
  if (!value.includes(',')) {
    const name = value.trim().toLowerCase();
    return name ? [name] : [];
  }
  const names: string[] = [];
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name) names.push(name);
  }
  return names;
}

/** Unsets every header named in a Connection value (RFC 9110 §7.6.1), except the message's own framing. */
export function dropConnectionNamed(headers: Record<string, unknown>, connection: string | string[] | undefined): void {
  // What Node's clients and browsers send names only a hop-by-hop header, which goes anyway: skip the parse and the
  // lookup (about 1.2k instructions per request, callgrind).
  if (connection === undefined || connection === 'keep-alive') return;
  for (const name of connectionNames(String(connection))) {
    if (!PROTECTED.has(name) && headers[name] !== undefined) headers[name] = undefined;
  }
}

export interface ForwardingFacts {
  readonly peer: string;
  readonly trustedProxies: BlockList | null;
  /** The Host the client asked for, as X-Forwarded-Host. */
  readonly clientHost: string;
  /** The scheme the client used, as X-Forwarded-Proto: `https` on the TLS listener; `http` when not given. */
  readonly proto?: 'http' | 'https';
  readonly requestIdHeader: string;
  readonly requestId: string;
  /** Keep `te: trailers` (an HTTP/2 upstream: gRPC servers look for it); any other TE goes as hop-by-hop. */
  readonly teTrailers?: boolean;
}

/**
 * Rewrites the request headers in place for the upstream: hop-by-hop headers and those named in Connection go;
 * X-Forwarded-For becomes the socket peer, appended to the client's value only when the peer is a trusted proxy.
 *
 * Headers that go are set to undefined, not deleted: undici skips them, while a `delete` turns the object into a hash
 * table that every later header access pays for. Most clients send `Connection: keep-alive` (browsers, Node's and
 * undici's clients): this function and undici's request constructor took 2.8 µs with deletes and 0.8 µs without for
 * a Node client's request, 3.2 and 2.0 µs for a browser's (medians of 3 runs of a microbenchmark, 2-core VM).
 * Anything else that is handed the object must remove them first (deleteUnset).
 */
export function prepareUpstreamHeaders(headers: IncomingHttpHeaders, facts: ForwardingFacts): void {
  dropConnectionNamed(headers, headers.connection);
  const peer = facts.peer;
  const trusted = facts.trustedProxies !== null
    && facts.trustedProxies.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4');
  // One look at each header the client sent (a handful), rather than a probe of the object for each of 17 names.
  for (const name in headers) {
    if (REQUEST_HOP_BY_HOP.has(name) || (!trusted && CLIENT_FORWARDING.has(name))) {
      if (name !== 'te' || facts.teTrailers !== true || headers.te !== 'trailers') headers[name] = undefined;
    }
  }
  if (trusted) {
    const xff = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = xff ? `${xff}, ${peer}` : peer;
    headers['x-forwarded-proto'] ??= facts.proto ?? 'http';
    headers['x-forwarded-host'] ??= facts.clientHost;
  } else {
    headers['x-forwarded-for'] = peer;
    headers['x-forwarded-proto'] = facts.proto ?? 'http';
    if (facts.clientHost) headers['x-forwarded-host'] = facts.clientHost;
  }
  headers[facts.requestIdHeader] = facts.requestId;
}

/** Deletes the headers prepareUpstreamHeaders unset, for a consumer other than undici (Node's client throws on them). */
export function deleteUnset(headers: IncomingHttpHeaders): void {
  for (const name of Object.keys(headers)) if (headers[name] === undefined) delete headers[name];
}

const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade', 'te', 'proxy-authenticate']);
// A name of another length (Date, Content-Length, Content-Type: most of them) is kept without being lower-cased and
// looked up; both were a third of this function's time (--cpu-prof, 100-byte keep-alive).
const HOP_BY_HOP_LENGTH = new Uint8Array(32);
for (const name of RESPONSE_HOP_BY_HOP) HOP_BY_HOP_LENGTH[name.length] = 1;

/** Adds to `named` the names listed in a Connection value that are neither hop-by-hop nor the message's framing. */
function addConnectionNamed(value: string, named: Set<string> | undefined): Set<string> | undefined {
  // Hop-by-hop names are dropped anyway: `Connection: keep-alive` (Node's answers) needs no second pass.
  for (const name of connectionNames(value)) {
    if (!PROTECTED.has(name) && !RESPONSE_HOP_BY_HOP.has(name)) (named ??= new Set()).add(name);
  }
  return named;
}

/**
 * Sets the gateway's `fields` (a flat [name, value, …] list, lower-case names) on a response header list: the list's
 * own fields of those names are removed first, so the gateway's replace the upstream's rather than join them.
 */
export function replaceFields(list: string[], fields: readonly string[]): void {
  let kept = 0;
  for (let i = 0; i < list.length; i += 2) {
    const name = (list[i] as string).toLowerCase();
    let ours = false;
    for (let j = 0; j < fields.length; j += 2) if (fields[j] === name) { ours = true; break; }
    if (ours) continue;
    list[kept++] = list[i] as string;
    list[kept++] = list[i + 1] as string;
  }
  list.length = kept;
  list.push(...fields);
}

/**
 * The upstream's raw response headers (undici's Buffers) as a flat [name, value, …] list for `writeHead`, keeping
 * case and repeated fields (Set-Cookie) but not hop-by-hop ones nor those named in Connection; Node then frames the
 * response for this client itself. Latin-1 both ways, as Node's own parser and writer do, so bytes pass unchanged.
 */
export function responseHeaderList(raw: readonly Buffer[]): string[] {
  const out: string[] = [];
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1');
    if (name.length < 32 && HOP_BY_HOP_LENGTH[name.length] === 1) {
      const lower = name.toLowerCase();
      if (RESPONSE_HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') {
          // Node's servers answer `Connection: keep-alive`, which names only a hop-by-hop header: no parse (as on the
          // request side, dropConnectionNamed).
          const value = (raw[i + 1] as Buffer).toString('latin1');
          if (value !== 'keep-alive') named = addConnectionNamed(value, named);
        }
        continue;
      }
    }
    out.push(name, (raw[i + 1] as Buffer).toString('latin1'));
  }
  if (named === undefined) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!named.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string);
  }
  return kept;
}

/**
 * responseHeaderList for an HTTP/2 upstream, whose head undici hands over as Node's header object (lower-case names,
 * repeated fields as arrays, `:status` already taken out) instead of raw pairs. HTTP/2 has no connection-specific
 * headers (Node's client refuses an answer with them); the hop-by-hop check stays for what an HTTP/1.1 client must
 * not get (`te`, `trailer`, `proxy-authenticate`).
 */
export function http2ResponseHeaderList(headers: Readonly<Record<string, string | string[] | undefined>>): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* : */ || RESPONSE_HOP_BY_HOP.has(name)) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  return out;
}
