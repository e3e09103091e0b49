import type { Exchange } from './exchange.js';

/**
 * The access log's text formats (`log.accessFormat`, docs/observability.md): `combined`, the Apache/nginx line that
 * log tools parse, with the duration, request id and trace id after it; or a template of named fields such as
 * `{time} {method} {target} {status} {durationMs} {traceId}`. A template is compiled once, when the config is
 * loaded, into its literal pieces and one reader per field. A field without a value is written `-`, as nginx does.
 */

export const ACCESS_FIELDS = [
  'time', 'timeLocal', 'remote', 'method', 'host', 'path', 'query', 'target', 'protocol', 'status', 'bytes', 'durationMs',
  'reqId', 'traceId', 'route', 'service', 'endpoint', 'consumer', 'attempts', 'err', 'aborted', 'referer', 'userAgent',
] as const;

export type AccessField = typeof ACCESS_FIELDS[number];

/** nginx's `combined` (the consumer a policy established as the user), then the duration, request id and trace id. */
export const COMBINED_FORMAT = '{remote} - {consumer} [{timeLocal}] "{method} {target} {protocol}" {status} {bytes} "{referer}" "{userAgent}" {durationMs} {reqId} {traceId}';

const FIELD = /\{([A-Za-z]+)\}/g;
const KNOWN = new Set<string>(ACCESS_FIELDS);

/** The `{name}` pieces of a template that name no field, for the config check. */
export function unknownAccessFields(template: string): string[] {
  return [...template.matchAll(FIELD)].map((m) => m[1] as string).filter((name) => !KNOWN.has(name));
}

/**
 * `new Date(ms).toISOString()`, with the date and time up to the second formatted once per second: V8 formats an
 * ISO time through snprintf, about 7k instructions (callgrind), and a busy gateway stamps many lines per second.
 */
export function isoTimeOf(): (ms: number) => string {
  let second = -1;
  let prefix = '';
  return (ms) => {
    const within = ms % 1000;
    if (ms - within !== second) {
      second = ms - within;
      prefix = new Date(second).toISOString().slice(0, -4);   // up to and with the `.` before the milliseconds
    }
    return `${prefix}${within < 10 ? '00' : within < 100 ? '0' : ''}${within}Z`;
  };
}

/**
 * `String(h / 100)` for a whole number of hundredths h ≥ 0 (a duration rounded to 0.01 ms), from two integers:
 * V8 writes a fractional number through its double-to-string routine, about 500 instructions (callgrind), while
 * small integers come from its number-string cache.
 */
export function hundredthsText(h: number): string {
  const whole = Math.floor(h / 100);
  const rest = h - whole * 100;
  if (rest === 0) return `${whole}`;
  if (rest % 10 === 0) return `${whole}.${rest / 10}`;
  return rest < 10 ? `${whole}.0${rest}` : `${whole}.${rest}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** Apache's `%t` in UTC (`07/Dec/2026:20:54:01 +0000`), formatted once per second. */
function localTimeOf(): (ms: number) => string {
  let second = -1;
  let text = '';
  return (ms) => {
    const s = ms - (ms % 1000);
    if (s !== second) {
      second = s;
      const d = new Date(s);
      text = `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
    }
    return text;
  };
}

// Printable ASCII but `"` and `\`: written as is. Anything else is written as \xHH per UTF-8 byte, as nginx escapes
// its variables, so a client cannot break a line or a quoted field.
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function escaped(s: string): string {
  if (PLAIN_TEXT.test(s)) return s;
  let out = '';
  for (const ch of s) {
    if (PLAIN_TEXT.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch)) out += `\\x${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const text = (s: string | undefined): string => (s === undefined || s === '' ? '-' : escaped(s));
const header = (v: string | string[] | undefined): string => text(Array.isArray(v) ? v.join(', ') : v);

/** Writes one access line (without its newline) for a finished exchange; `nowMs` is the line's time (Date.now()). */
export type AccessLineFormat = (ex: Exchange, aborted: boolean, nowMs: number) => string;

/** A template (or `combined`) compiled into literal pieces and a reader per field; unknown fields were refused at load. */
export function compileAccessFormat(format: string): AccessLineFormat {
  const template = format === 'combined' ? COMBINED_FORMAT : format;
  const isoTime = isoTimeOf();
  const localTime = localTimeOf();
  const readers: Record<AccessField, (ex: Exchange, aborted: boolean, nowMs: number) => string> = {
    time: (_ex, _a, now) => isoTime(now),
    timeLocal: (_ex, _a, now) => localTime(now),
    remote: (ex) => text(ex.req.socket?.remoteAddress),
    method: (ex) => text(ex.req.method),
    host: (ex) => text(ex.host),
    path: (ex) => text(ex.path),
    query: (ex) => text(ex.search),
    target: (ex) => text(ex.path === '' ? ex.req.url : `${ex.path}${ex.search}`),
    protocol: (ex) => (ex.http2 ? 'HTTP/2.0' : `HTTP/${ex.req.httpVersion}`),
    status: (ex) => `${ex.status}`,
    bytes: (ex) => `${ex.bytes}`,
    durationMs: (ex) => hundredthsText(ex.durationHundredths()),
    reqId: (ex) => text(ex.requestId),
    traceId: (ex) => text(ex.traceId),
    route: (ex) => text(ex.route?.name),
    service: (ex) => text(ex.route?.service),
    endpoint: (ex) => text(ex.endpoint?.address),
    consumer: (ex) => text(ex.consumer),
    attempts: (ex) => `${ex.attempts}`,
    err: (ex) => text(ex.errorCode),
    aborted: (_ex, aborted) => (aborted ? 'aborted' : '-'),
    referer: (ex) => header(ex.req.headers.referer),
    userAgent: (ex) => header(ex.req.headers['user-agent']),
  };
  const pieces = template.split(FIELD);   // literal, field, literal, …, literal
  const literals = pieces.filter((_, i) => i % 2 === 0);
  const fields = pieces.filter((_, i) => i % 2 === 1).map((name) => readers[name as AccessField]);
  return (ex, aborted, nowMs) => {
    let line = literals[0] as string;
    for (let i = 0; i < fields.length; i++) line += (fields[i] as AccessLineFormat)(ex, aborted, nowMs) + (literals[i + 1] as string);
    return line;
  };
}
