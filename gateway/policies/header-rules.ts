import { FIELD_VALUE, TOKEN, removeFields } from './answer-edits.js';
import type { AnswerEdit, Policy, PolicyExchange, PolicyKind, PolicyLoadContext, Verdict } from './policy.js';

/** One direction's rules as loaded: names lower-case, values checked. */
interface Rules {
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

interface HeaderRules {
  readonly request: Rules | null;
  readonly response: Rules | null;
}

// Hop-by-hop fields (RFC 9110 §7.6.1) and the message's framing are the connection's, not the route's.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length'];
// What the gateway itself tells the upstream (proxy/forwarded-headers.ts): a rule would be overwritten, or would lie.
const GATEWAY_REQUEST = ['host', 'expect', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix', 'x-real-ip'];

const rules = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    set: { type: 'object', additionalProperties: { type: 'string' }, description: 'Fields set, replacing any of the same name.' },
    add: { type: 'object', additionalProperties: { type: 'string' }, description: 'Fields added beside any of the same name.' },
    remove: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Fields removed.' },
  },
} as const;

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { request: rules, response: rules },
  description: 'Header rules on the request before it is forwarded and on every answer of the route.',
} as const;

type RawRules = { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] };

function loadRules(raw: RawRules | undefined, side: 'request' | 'response', ctx: PolicyLoadContext): Rules | null {
  if (raw === undefined) return null;
  const protectedNames = new Set([...HOP_BY_HOP, ctx.requestIdHeader, ...(side === 'request' ? GATEWAY_REQUEST : [])]);
  const check = (name: string, path: (string | number)[]): string => {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) ctx.report(path, `"${name}" is not a header name`);
    else if (protectedNames.has(lower)) ctx.report(path, `"${lower}" is the gateway's own header (hop-by-hop, framing, forwarding or the request id): a rule may not change it`);
    return lower;
  };
  const pairs = (op: 'set' | 'add'): [string, string][] => Object.entries(raw[op] ?? {}).map(([name, value]) => {
    if (!FIELD_VALUE.test(value)) ctx.report([side, op, name], 'a header value may not hold control characters');
    return [check(name, [side, op, name]), value];
  });
  return { set: pairs('set'), add: pairs('add'), remove: (raw.remove ?? []).map((name, i) => check(name, [side, 'remove', i])) };
}

function load(options: unknown, ctx: PolicyLoadContext): HeaderRules {
  const o = options as { request?: RawRules; response?: RawRules };
  return { request: loadRules(o.request, 'request', ctx), response: loadRules(o.response, 'response', ctx) };
}

/** The request rules as one pass over the request's header object. */
function requestEditor(r: Rules): (headers: Record<string, string | string[] | undefined>) => void {
  const { set, add, remove } = r;
  return (headers) => {
    // Unset rather than deleted, as forwarded-headers.ts does: undici skips them, and the object keeps its shape.
    for (const name of remove) if (headers[name] !== undefined) headers[name] = undefined;
    for (const [name, value] of set) headers[name] = value;
    for (const [name, value] of add) {
      const current = headers[name];
      if (current === undefined) headers[name] = value;
      else if (Array.isArray(current)) headers[name] = [...current, value];
      else headers[name] = `${current}${name === 'cookie' ? '; ' : ', '}${value}`;   // how Node joins repeated fields
    }
  };
}

/** The response rules as an answer edit: removals and replaced names first, then the fields set and added. */
function responseEdit(r: Rules): AnswerEdit {
  const dropped = new Set([...r.remove, ...r.set.map(([name]) => name)]);
  const drop = (name: string): boolean => dropped.has(name);
  const added = [...r.set, ...r.add].flat();
  return {
    edit(headers) {
      if (dropped.size !== 0) removeFields(headers, drop);
      for (let i = 0; i < added.length; i++) headers.push(added[i] as string);
    },
  };
}

function create(name: string, rules: HeaderRules): Policy {
  const onRequest = rules.request === null ? null : requestEditor(rules.request);
  const onAnswer = rules.response === null ? null : responseEdit(rules.response);
  const step = {
    policy: name,
    kind: 'headers',
    apply(ex: PolicyExchange): Verdict {
      if (onRequest !== null) onRequest(ex.req.headers);
      if (onAnswer !== null) (ex.answerEdits ??= []).push(onAnswer);
      return undefined;
    },
  };
  return { forRoute: () => step };
}

/** `headers: { request: { set, add, remove }, response: { set, add, remove } }` (docs/policies.md). */
export const headers: PolicyKind<HeaderRules> = {
  kind: 'headers',
  optionsSchema,
  load,
  create: (name, rules) => create(name, rules),
};
