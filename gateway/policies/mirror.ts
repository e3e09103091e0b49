import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Selection } from '../resilience/endpoint-selector.js';
import type { Policy, PolicyBuildContext, PolicyExchange, PolicyKind, PolicyLoadContext, Verdict } from './policy.js';

interface Mirror {
  readonly service: string;
  readonly percent: number;
  readonly maxInFlight: number;
  readonly timeoutMs: number;
}

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['service', 'percent'],
  properties: {
    service: { type: 'string', minLength: 1, description: 'The service that gets the copies.' },
    percent: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'The share of the route\'s requests copied.' },
    maxInFlight: { type: 'integer', minimum: 1, maximum: 100000, default: 64, description: 'Copies under way at once; past it, copies are dropped and counted.' },
    timeoutMs: { type: 'integer', minimum: 1, default: 5000, description: 'A copy not answered by then is abandoned.' },
  },
} as const;

// Not copied: the connection's own fields, and the body's framing (undici frames the copy's body itself).
const NOT_COPIED = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'expect', 'transfer-encoding', 'content-length']);

function load(options: unknown, ctx: PolicyLoadContext): Mirror {
  const o = options as Mirror;
  if (!ctx.services.has(o.service)) ctx.report(['service'], `unknown service "${o.service}" (defined: ${[...ctx.services].join(', ')})`);
  return o;
}

function copyHeaders(headers: IncomingHttpHeaders, clientAddress: string): Record<string, string | string[]> {
  const copy: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !NOT_COPIED.has(name)) copy[name] = value;
  }
  copy['x-forwarded-for'] = clientAddress;
  return copy;
}

function create(name: string, m: Mirror, ctx: PolicyBuildContext): Policy {
  const events = ctx.runtime.events;
  const count = (outcome: 'sent' | 'dropped' | 'failed' | 'skipped'): void => events.mirrored?.(name, outcome);
  let inFlight = 0;
  // Fire and forget: the real request goes on at once; the copy's answer is read and thrown away.
  function send(req: IncomingMessage, headers: Record<string, string | string[]>, body: Buffer | null): void {
    if (inFlight >= m.maxInFlight) { count('dropped'); return; }
    const service = ctx.services().get(m.service);
    const endpoint = service?.selector.select(new Selection(), req, Date.now());
    if (endpoint === undefined) { count('skipped'); return; }
    inFlight++;
    count('sent');
    endpoint.pool.request({ method: req.method as 'GET', path: req.url as string, headers, body, signal: AbortSignal.timeout(m.timeoutMs) })
      .then((res) => res.body.dump(), () => count('failed')).finally(() => { inFlight--; });
  }
  // Exact shares rather than a coin toss: `percent` of every 100 requests, spread evenly.
  let credit = 0;
  const step = {
    policy: name,
    kind: 'mirror',
    apply(ex: PolicyExchange): Verdict {
      credit += m.percent;
      if (credit < 100) return undefined;
      credit -= 100;
      const req = ex.req;
      const length = req.headers['content-length'];
      if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
        send(req, copyHeaders(req.headers, ctx.clientAddress(req)), null);
        return undefined;
      }
      // With a body: the copy goes once the gateway holds the whole body (buffered for retries), with the head as it
      // is now; a body streamed to the real upstream is read once and cannot be copied.
      const headers = copyHeaders(req.headers, ctx.clientAddress(req));
      ex.bodyCopy = (body) => (body === null ? count('skipped') : send(req, headers, body));
      return undefined;
    },
  };
  return { forRoute: () => step };
}

/** `mirror: { service, percent }`: copies of a share of the route's requests to another service, answers discarded. */
export const mirror: PolicyKind<Mirror> = {
  kind: 'mirror',
  optionsSchema,
  load,
  create: (name, m, ctx) => create(name, m, ctx),
};
