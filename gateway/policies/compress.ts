import { constants, createBrotliCompress, createGzip, type BrotliCompress, type Gzip } from 'node:zlib';
import type { Duplex } from 'node:stream';
import type { AnswerBodyFilter, Policy, PolicyExchange, PolicyKind, PolicyLoadContext, Verdict } from './policy.js';

interface Compress {
  /** Media types, lower-case: exact (`application/json`) or a whole family (`text/*`). */
  readonly types: readonly string[];
  readonly minBytes: number;
}

type Encoding = 'br' | 'gzip' | '';

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['types'],
  properties: {
    types: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Media types compressed: `application/json`, or `text/*` for a family.' },
    minBytes: { type: 'integer', minimum: 0, default: 1024, description: 'An answer whose Content-Length is below this is sent as it is.' },
  },
} as const;

const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/(\*|[a-z0-9!#$&^_.+-]+)$/;

function load(options: unknown, ctx: PolicyLoadContext): Compress {
  const o = options as { types: string[]; minBytes: number };
  const types = o.types.map((t, i) => {
    const lower = t.toLowerCase();
    if (!MEDIA_TYPE.test(lower) || lower.startsWith('*/')) ctx.report(['types', i], `"${t}" is not a media type (type/subtype, or type/* for a family)`);
    return lower;
  });
  return { types, minBytes: o.minBytes };
}

/** The best encoding the client accepts (br before gzip), '' when neither (RFC 9110 §12.5.3: q=0 refuses). */
export function acceptedEncoding(accept: string | undefined): Encoding {
  if (accept === undefined || accept === '') return '';
  let br = -1;
  let gzip = -1;
  let any = -1;
  for (const item of accept.split(',')) {
    const semi = item.indexOf(';');
    const coding = (semi === -1 ? item : item.slice(0, semi)).trim().toLowerCase();
    let q = 1;
    if (semi !== -1) {
      const m = /q\s*=\s*([0-9.]+)/i.exec(item.slice(semi));
      if (m) q = Number(m[1]);
    }
    if (coding === 'br') br = q;
    else if (coding === 'gzip' || coding === 'x-gzip') gzip = q;
    else if (coding === '*') any = q;
  }
  if (br === -1) br = any;
  if (gzip === -1) gzip = any;
  if (br > 0 && br >= gzip) return 'br';
  if (gzip > 0) return 'gzip';
  return '';
}

// Quality 4 and level 6: brotli's default (11) is for files compressed once, and costs a CPU second per few MiB.
const BROTLI = { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } };
const GZIP = { level: 6 };

/**
 * An answer of unknown length is a stream (server-sent events, long polls): what the upstream wrote in one event-loop
 * turn goes out at the end of it, as the uncompressed stream would, instead of waiting in the compressor's window. A
 * sync flush per burst costs a few bytes; an answer with a Content-Length is compressed in one piece.
 */
function flushedEachTurn(z: Gzip | BrotliCompress, kind: number): Duplex {
  let pending = false;
  let flushing = false;
  const flush = (): void => {
    pending = false;
    if (z.destroyed || z.writableEnded) return;
    flushing = true;   // flush() writes its marker through write(): that one schedules nothing
    z.flush(kind);
    flushing = false;
  };
  const write = z.write.bind(z) as (...args: unknown[]) => boolean;
  z.write = ((...args: unknown[]) => {
    if (!pending && !flushing) { pending = true; setImmediate(flush); }
    return write(...args);
  }) as typeof z.write;
  return z;
}

function create(name: string, c: Compress): Policy {
  const exact = new Set(c.types.filter((t) => !t.endsWith('/*')));
  const families = c.types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1));
  const matches = (contentType: string): boolean => {
    const semi = contentType.indexOf(';');
    const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    return exact.has(type) || families.some((f) => type.startsWith(f));
  };

  /** Whether the answer may be compressed at all; then it varies by Accept-Encoding whoever asked. */
  function compressible(headers: readonly string[], status: number, ex: PolicyExchange): boolean {
    if (status < 200 || status === 204 || status === 206 || status === 304 || ex.req.method === 'HEAD') return false;
    let typed = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = (headers[i] as string).toLowerCase();
      const value = headers[i + 1] as string;
      if (name === 'content-encoding' && value.trim().toLowerCase() !== 'identity') return false;   // the upstream compressed it
      if (name === 'content-length' && Number(value) < c.minBytes) return false;
      if (name === 'cache-control' && /no-transform/i.test(value)) return false;
      if (name === 'content-type') typed = matches(value);
    }
    return typed;
  }

  function filter(encoding: Encoding): AnswerBodyFilter {
    return {
      start(headers, status, ex): Duplex | null {
        if (!compressible(headers, status, ex)) return null;
        if (encoding === '') {
          headers.push('vary', 'Accept-Encoding');
          return null;
        }
        let kept = 0;
        let length = false;
        for (let i = 0; i < headers.length; i += 2) {
          const name = (headers[i] as string).toLowerCase();
          if (name === 'content-length') length = true;
          if (name === 'content-length' || name === 'content-encoding') continue;   // the length changes; `identity` goes
          let value = headers[i + 1] as string;
          // The bytes differ from the upstream's: a strong validator would claim they are the same.
          if (name === 'etag' && !value.startsWith('W/')) value = `W/${value}`;
          headers[kept++] = headers[i] as string;
          headers[kept++] = value;
        }
        headers.length = kept;
        headers.push('content-encoding', encoding, 'vary', 'Accept-Encoding');
        const z = encoding === 'br' ? createBrotliCompress(BROTLI) : createGzip(GZIP);
        return length ? z : flushedEachTurn(z, encoding === 'br' ? constants.BROTLI_OPERATION_FLUSH : constants.Z_SYNC_FLUSH);
      },
    };
  }
  const byEncoding = { br: filter('br'), gzip: filter('gzip'), '': filter('') };

  const step = {
    policy: name,
    kind: 'compress',
    apply(ex: PolicyExchange): Verdict {
      ex.answerBody = byEncoding[acceptedEncoding(ex.req.headers['accept-encoding'])];
      return undefined;
    },
  };
  return { forRoute: () => step };
}

/** `compress: { types, minBytes }`: the upstream's answers compressed with br or gzip for clients that accept them. */
export const compress: PolicyKind<Compress> = {
  kind: 'compress',
  optionsSchema,
  load,
  create: (name, c) => create(name, c),
};
