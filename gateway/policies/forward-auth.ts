import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
import type { Policy, PolicyBuildContext, PolicyExchange, PolicyKind, PolicyLoadContext, Refusal, Verdict } from './policy.js';

export interface ForwardAuthOptions {
  readonly url: string;
  /** Lower-case names of the auth service's answer headers copied onto the upstream request. */
  readonly copyHeaders: readonly string[];
  /** Lower-case name of a copied header whose value is the consumer; '' for none. */
  readonly consumerHeader: string;
  readonly timeoutMs: number;
}

// Not sent to the auth service: hop-by-hop and the request body's framing (it gets the head only).
const NOT_SENT = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect', 'transfer-encoding', 'content-length', 'host']);
// What of a refusal is relayed to the client: the challenge, the body's type, a login redirect, its cookies.
const RELAYED = ['www-authenticate', 'content-type', 'location', 'set-cookie'];
/** The most of an auth service's answer body that is read (a refusal's is relayed). */
const MAX_BODY_BYTES = 64 * 1024;

function load(raw: unknown, ctx: PolicyLoadContext): ForwardAuthOptions {
  const o = raw as { url: string; copyHeaders: string[]; consumerHeader?: string; timeoutMs: number };
  let url: URL | undefined;
  try { url = new URL(o.url); } catch { /* reported below */ }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) ctx.report(['url'], `"${o.url}" is not an http:// or https:// URL`);
  const copyHeaders = o.copyHeaders.map((h) => h.toLowerCase());
  const consumerHeader = o.consumerHeader?.toLowerCase() ?? '';
  if (consumerHeader !== '' && !copyHeaders.includes(consumerHeader)) ctx.report(['consumerHeader'], 'must be one of copyHeaders');
  return { url: o.url, copyHeaders, consumerHeader, timeoutMs: o.timeoutMs };
}

async function readBody(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`the auth service's answer is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function create(name: string, options: ForwardAuthOptions, ctx: PolicyBuildContext): Policy {
  // Its own connections, closed with the config: the auth service is not an upstream of any route.
  const agent = new Agent({ keepAliveTimeout: 4_000, connections: 64 });
  const log = ctx.runtime.log;
  const timeout: Refusal = { code: 'GW_ERR_AUTH_TIMEOUT', reason: 'timeout' };
  const unavailable: Refusal = { code: 'GW_ERR_AUTH_UNAVAILABLE', reason: 'unavailable', headers: ['retry-after', '1'] };

  async function ask(ex: PolicyExchange): Promise<Verdict> {
    const req = ex.req;
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers as IncomingHttpHeaders)) {
      if (value !== undefined && !NOT_SENT.has(name)) headers[name] = value;
    }
    headers['x-forwarded-method'] = req.method ?? 'GET';
    headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
    headers['x-forwarded-host'] = req.headers.host ?? '';
    headers['x-forwarded-uri'] = req.url ?? '/';
    headers['x-forwarded-for'] = ctx.clientAddress(req);
    let status: number;
    let answer: Record<string, string | string[] | undefined>;
    let body: Buffer;
    // Ends at timeoutMs, or as soon as the client goes: nobody would get the answer.
    const signal = AbortSignal.any([ex.signal, AbortSignal.timeout(options.timeoutMs)]);
    try {
      const res = await request(options.url, { method: 'GET', headers, dispatcher: agent, signal });
      status = res.statusCode;
      answer = res.headers;
      body = await readBody(res.body);
    } catch (err) {
      if (ex.closed) return undefined;   // the client left: the chain drops whatever is returned
      const timedOut = (err as Error).name === 'TimeoutError' || (err as { code?: string }).code === 'UND_ERR_ABORTED';
      log.warn({ err, policy: name, url: options.url, reqId: ex.requestId, timeoutMs: options.timeoutMs }, timedOut ? 'forward-auth did not answer in time' : 'forward-auth could not be asked');
      return timedOut ? timeout : unavailable;
    }
    if (status >= 200 && status < 300) {
      for (const header of options.copyHeaders) {
        const value = answer[header];
        if (value !== undefined) req.headers[header] = Array.isArray(value) ? value.join(', ') : value;
      }
      if (options.consumerHeader !== '') {
        const consumer = req.headers[options.consumerHeader];
        if (typeof consumer === 'string') ex.consumer = consumer;
      }
      return undefined;
    }
    const relayed: string[] = [];
    for (const header of RELAYED) {
      const value = answer[header];
      if (Array.isArray(value)) for (const v of value) relayed.push(header, v);
      else if (value !== undefined) relayed.push(header, value);
    }
    return { relay: { status, headers: relayed, body }, reason: `status-${Math.floor(status / 100)}xx` };
  }

  const step = {
    policy: name,
    kind: 'forwardAuth',
    apply(ex: PolicyExchange): Promise<Verdict> {
      // The headers the auth service vouches for are never the client's.
      const headers = ex.req.headers;
      for (const header of options.copyHeaders) if (headers[header] !== undefined) headers[header] = undefined;
      return ask(ex);
    },
  };
  return { forRoute: () => step, close: () => agent.close() };
}

/**
 * `forwardAuth: { url, copyHeaders, timeoutMs }`: the request's head is shown to an auth service (GET, the client's
 * headers and X-Forwarded-Method/-Proto/-Host/-Uri/-For); a 2xx lets it through with `copyHeaders` of that answer,
 * anything else is the client's answer.
 */
export const forwardAuth: PolicyKind<ForwardAuthOptions> = {
  kind: 'forwardAuth',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', minLength: 1, description: 'The auth service: a 2xx lets the request through.' },
      copyHeaders: { type: 'array', default: [], uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9-]+$' }, description: 'Headers of its 2xx answer set on the upstream request.' },
      consumerHeader: { type: 'string', pattern: '^[A-Za-z0-9-]+$', description: 'One of copyHeaders whose value names the consumer.' },
      timeoutMs: { type: 'integer', minimum: 1, maximum: 60000, default: 2000, description: 'Past this, 504.' },
    },
  },
  load,
  create,
};
