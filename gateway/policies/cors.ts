import { TOKEN, removeFields } from './answer-edits.js';
import type { AnswerEdit, Policy, PolicyExchange, PolicyKind, PolicyLoadContext, Verdict } from './policy.js';

interface Cors {
  /** Exact origins (`https://app.example.com`), or ['*'] for any. */
  readonly origins: readonly string[];
  readonly methods: readonly string[];
  /** Request headers a preflight may ask for, lower-case. */
  readonly headers: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly credentials: boolean;
  readonly maxAgeS: number | null;
}

const EMPTY = Buffer.alloc(0);
const names = { type: 'array', items: { type: 'string', minLength: 1 } } as const;

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['origins'],
  properties: {
    origins: { ...names, minItems: 1, description: 'Origins allowed to read answers (scheme://host[:port]), or ["*"].' },
    methods: { ...names, default: ['GET', 'HEAD', 'POST'] },
    headers: { ...names, default: [], description: 'Request headers a cross-origin request may send.' },
    exposeHeaders: { ...names, default: [], description: 'Answer headers a page may read beyond the safelisted ones.' },
    credentials: { type: 'boolean', default: false },
    maxAgeS: { type: 'integer', minimum: 0, maximum: 86400, description: 'How long a browser may keep a preflight\'s answer.' },
  },
} as const;

function load(options: unknown, ctx: PolicyLoadContext): Cors {
  const o = options as { origins: string[]; methods: string[]; headers: string[]; exposeHeaders: string[]; credentials: boolean; maxAgeS?: number };
  o.origins.forEach((origin, i) => {
    if (origin === '*') {
      if (o.origins.length > 1) ctx.report(['origins', i], '"*" allows every origin: it must be the only entry');
      // A page of any site could then read answers made with the visitor's cookies; browsers refuse it anyway.
      else if (o.credentials) ctx.report(['origins', i], '"*" with credentials: true would let any site read answers made with its visitors\' cookies: list the origins');
      return;
    }
    let parsed: string | undefined;
    try { parsed = new URL(origin).origin; } catch { parsed = undefined; }
    if (parsed !== origin) ctx.report(['origins', i], `"${origin}" is not an origin (scheme://host[:port], no path, no trailing slash)`);
  });
  const tokens = (list: string[], key: string): void => list.forEach((v, i) => { if (!TOKEN.test(v)) ctx.report([key, i], `"${v}" is not a ${key === 'methods' ? 'method' : 'header name'}`); });
  tokens(o.methods, 'methods');
  tokens(o.headers, 'headers');
  tokens(o.exposeHeaders, 'exposeHeaders');
  return {
    origins: o.origins, methods: o.methods, headers: o.headers.map((h) => h.toLowerCase()), exposeHeaders: o.exposeHeaders,
    credentials: o.credentials, maxAgeS: o.maxAgeS ?? null,
  };
}

const isCorsField = (name: string): boolean => name.startsWith('access-control-');

function create(name: string, c: Cors): Policy {
  const any = c.origins[0] === '*';
  const origins = new Set(c.origins);
  const methods = new Set(c.methods);
  const allowedHeaders = new Set(c.headers);
  // Answers differ by Origin unless every origin gets the same `*`: a cache must keep them apart.
  const varyOrigin = !any || c.credentials;
  const preflightFields = ['access-control-allow-methods', c.methods.join(', ')];
  if (c.headers.length) preflightFields.push('access-control-allow-headers', c.headers.join(', '));
  if (c.maxAgeS !== null) preflightFields.push('access-control-max-age', String(c.maxAgeS));
  const actualFields: string[] = [];
  if (c.exposeHeaders.length) actualFields.push('access-control-expose-headers', c.exposeHeaders.join(', '));
  const commonFields = c.credentials ? ['access-control-allow-credentials', 'true'] : [];
  const vary = varyOrigin ? ['vary', 'Origin'] : [];
  const refusedPreflight = { relay: { status: 204, headers: [...vary], body: EMPTY }, reason: 'preflight-refused' };

  const allowOrigin = (origin: string): string => (any && !c.credentials ? '*' : origin);
  const allows = (origin: string | undefined): origin is string => origin !== undefined && (any || origins.has(origin));

  /** The CORS fields of an actual answer: the upstream's own are replaced, and a refused origin gets none. */
  const onAnswer: AnswerEdit = {
    edit(headers, ex) {
      removeFields(headers, isCorsField);
      const origin = ex.req.headers.origin;
      if (allows(origin)) headers.push('access-control-allow-origin', allowOrigin(origin), ...commonFields, ...actualFields);
      if (varyOrigin) headers.push('vary', 'Origin');
    },
  };

  function preflight(origin: string | undefined, ex: PolicyExchange): Verdict {
    const req = ex.req.headers;
    if (!allows(origin) || !methods.has(req['access-control-request-method'] as string)) return refusedPreflight;
    const asked = req['access-control-request-headers'];
    if (asked !== undefined) {
      for (const h of asked.split(',')) {
        const header = h.trim().toLowerCase();
        if (header !== '' && !allowedHeaders.has(header)) return refusedPreflight;
      }
    }
    const headers = ['access-control-allow-origin', allowOrigin(origin), ...commonFields, ...preflightFields, ...vary];
    return { relay: { status: 204, headers, body: EMPTY }, reason: 'preflight' };
  }

  const step = {
    policy: name,
    kind: 'cors',
    apply(ex: PolicyExchange): Verdict {
      const req = ex.req;
      const origin = req.headers.origin;
      // A preflight is the gateway's to answer: the upstream never sees it.
      if (req.method === 'OPTIONS' && origin !== undefined && req.headers['access-control-request-method'] !== undefined) return preflight(origin, ex);
      (ex.answerEdits ??= []).push(onAnswer);
      return undefined;
    },
  };
  return { forRoute: () => step };
}

/** `cors: { origins, methods, headers, exposeHeaders, credentials, maxAgeS }` (docs/policies.md). */
export const cors: PolicyKind<Cors> = {
  kind: 'cors',
  optionsSchema,
  load,
  create: (name, c) => create(name, c),
};
