import { FIELD_VALUE } from './answer-edits.js';
import type { Policy, PolicyExchange, PolicyKind, PolicyLoadContext, Refusal } from './policy.js';

type Placeholder = 'path' | 'query' | 'host';

interface Redirect {
  /** The target as literal text and placeholders, in order. */
  readonly parts: readonly (string | { readonly placeholder: Placeholder })[];
  readonly status: number;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;
const EMPTY = Buffer.alloc(0);

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['to'],
  properties: {
    to: { type: 'string', minLength: 1, description: 'An absolute http(s) URL or a path; {path}, {query} and {host} are the request\'s.' },
    status: { enum: [301, 302, 303, 307, 308], default: 308 },
  },
} as const;

/** `{query}` carries its `?` (nothing without a query), so `{path}{query}` is the request's whole target. */
function queryOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q);
}

function load(options: unknown, ctx: PolicyLoadContext): Redirect {
  const { to, status } = options as { to: string; status: number };
  const parts: Redirect['parts'][number][] = [];
  let last = 0;
  let ok = true;
  for (const m of to.matchAll(PLACEHOLDER)) {
    const name = m[1] as string;
    if (name !== 'path' && name !== 'query' && name !== 'host') {
      ctx.report(['to'], `unknown placeholder "{${name}}" (known: {path}, {query}, {host})`);
      ok = false;
      continue;
    }
    if (m.index > last) parts.push(to.slice(last, m.index));
    parts.push({ placeholder: name });
    last = m.index + m[0].length;
  }
  if (last < to.length) parts.push(to.slice(last));
  if (!ok) return { parts, status };
  // What a request would make of it, with plain values standing for the placeholders.
  const sample = to.replaceAll('{path}', '/p').replaceAll('{query}', '?q').replaceAll('{host}', 'h.example');
  if (!FIELD_VALUE.test(to)) ctx.report(['to'], 'a redirect target may not hold control characters');
  else if (!sample.startsWith('/') || sample.startsWith('//')) {
    let url: URL | undefined;
    try { url = new URL(sample); } catch { url = undefined; }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      ctx.report(['to'], `"${to}" is neither an http(s) URL nor a path starting with /`);
    }
  }
  return { parts, status };
}

function create(name: string, r: Redirect): Policy {
  const { parts, status } = r;
  const step = {
    policy: name,
    kind: 'redirect',
    apply(ex: PolicyExchange): Refusal {
      let location = '';
      for (const part of parts) {
        if (typeof part === 'string') location += part;
        else if (part.placeholder === 'path') location += ex.path;
        else if (part.placeholder === 'query') location += queryOf(ex.req.url as string);
        else location += ex.host;
      }
      // Answered at the edge: no upstream is asked, nothing of the request is read.
      return { relay: { status, headers: ['location', location], body: EMPTY }, reason: 'redirect' };
    },
  };
  return { forRoute: () => step };
}

/** `redirect: { to, status }`: the route's requests are answered with a redirect, never forwarded (docs/policies.md). */
export const redirect: PolicyKind<Redirect> = {
  kind: 'redirect',
  optionsSchema,
  load,
  create: (name, r) => create(name, r),
};
