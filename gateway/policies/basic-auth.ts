import { createHash } from 'node:crypto';
import { credentialLines } from './credential-lines.js';
import type { Policy, PolicyExchange, PolicyKind, PolicyLoadContext, Refusal, Verdict } from './policy.js';

export interface BasicAuthOptions {
  /** [user, bcrypt hash] per line of the users file. */
  readonly users: readonly (readonly [string, string])[];
  readonly realm: string;
  readonly forwardAuthorization: boolean;
  readonly cacheTtlMs: number;
}

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
/** Verified credentials kept at most; past it the oldest goes (a Map keeps insertion order). */
const CACHE_MAX = 10_000;

function load(raw: unknown, ctx: PolicyLoadContext): BasicAuthOptions {
  const o = raw as { usersFile: string; realm: string; forwardAuthorization: boolean; cacheTtlMs: number };
  const users: [string, string][] = [];
  const seen = new Set<string>();
  let first: { line: number; cost: string } | undefined;
  for (const { line, text } of credentialLines(ctx.readFile(o.usersFile, ['usersFile']) ?? '')) {
    const colon = text.indexOf(':');
    const user = text.slice(0, colon);
    const hash = text.slice(colon + 1);
    const cost = hash.slice(4, 6);
    if (colon < 1 || !BCRYPT.test(hash)) {
      ctx.report(['usersFile'], `${o.usersFile} line ${line}: expected "user:<bcrypt hash>" (htpasswd -B)`);
    } else if (seen.has(user)) {
      ctx.report(['usersFile'], `${o.usersFile} line ${line}: user "${user}" is listed twice`);
    } else if (first !== undefined && cost !== first.cost) {
      // An unknown user is checked against a decoy of one cost: a user of another cost would answer a wrong password
      // faster or slower than an unknown user is refused, telling who exists.
      ctx.report(['usersFile'], `${o.usersFile} line ${line}: bcrypt cost ${Number(cost)} differs from line ${first.line}'s (${Number(first.cost)}); hash every user with one cost (htpasswd -B -C ${Number(first.cost)})`);
    } else {
      first ??= { line, cost };
      seen.add(user);
      users.push([user, hash]);
    }
  }
  return { users, realm: o.realm, forwardAuthorization: o.forwardAuthorization, cacheTtlMs: o.cacheTtlMs };
}

async function create(name: string, options: BasicAuthOptions): Promise<Policy> {
  const { default: bcrypt } = await import('bcryptjs');
  const users = new Map(options.users);
  // An unknown user is compared against this, at the cost of every hash of the file (load checks they share one): a
  // wrong user takes one bcrypt comparison as a wrong password does, so the timing does not tell which part failed.
  const rounds = options.users.length ? bcrypt.getRounds(options.users[0]![1]) : 10;
  const decoy = bcrypt.hashSync('decoy', rounds);
  /**
   * Credentials verified lately, by the SHA-256 of the whole Authorization value (no password is kept), with when
   * they stop counting. Why: bcrypt is slow on purpose (cost 5, htpasswd -B's default, took 4-11 ms per check in
   * bcryptjs here; cost 10 took 190-350 ms), and a client sends the same credential with every request: without
   * the cache each request would pay it and a few clients would saturate a core. Only successes are kept, so a
   * client cannot fill it with guesses; the policy and its cache are rebuilt on every reload, so a user removed from
   * the file is refused from the reload on, and otherwise after cacheTtlMs at most.
   */
  const verified = new Map<string, { user: string; untilMs: number }>();
  const challenge = ['www-authenticate', `Basic realm="${options.realm}", charset="UTF-8"`];
  const missing: Refusal = { code: 'GW_ERR_UNAUTHORIZED', reason: 'missing', headers: challenge };
  const invalid: Refusal = { code: 'GW_ERR_UNAUTHORIZED', reason: 'invalid', headers: challenge };

  function passed(ex: PolicyExchange, user: string): undefined {
    ex.consumer = user;
    if (!options.forwardAuthorization) ex.req.headers.authorization = undefined;
    return undefined;
  }

  async function check(ex: PolicyExchange, value: string, key: string): Promise<Verdict> {
    const decoded = Buffer.from(value.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? '' : decoded.slice(0, colon);
    const hash = users.get(user);
    const ok = await bcrypt.compare(colon < 0 ? '' : decoded.slice(colon + 1), hash ?? decoy);
    if (!ok || hash === undefined) return invalid;
    if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value as string);
    verified.set(key, { user, untilMs: Date.now() + options.cacheTtlMs });
    return passed(ex, user);
  }

  const step = {
    policy: name,
    kind: 'basicAuth',
    apply(ex: PolicyExchange): Verdict | Promise<Verdict> {
      const value = ex.req.headers.authorization;
      if (value === undefined || !/^basic /i.test(value)) return missing;
      const key = createHash('sha256').update(value).digest('base64');
      const hit = verified.get(key);
      if (hit !== undefined) {
        if (hit.untilMs > Date.now()) return passed(ex, hit.user);
        verified.delete(key);
      }
      return check(ex, value, key);
    },
  };
  return { forRoute: () => step };
}

/**
 * `basicAuth: { usersFile }`: HTTP Basic credentials checked against an htpasswd file of bcrypt hashes
 * (`htpasswd -B`), re-read on every reload; the user becomes the request's consumer. Authorization is not forwarded
 * unless `forwardAuthorization`.
 */
export const basicAuth: PolicyKind<BasicAuthOptions> = {
  kind: 'basicAuth',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['usersFile'],
    properties: {
      usersFile: { type: 'string', minLength: 1, description: 'htpasswd lines "user:<bcrypt hash>" (relative to the routes file).' },
      realm: { type: 'string', pattern: '^[^"\\\\]{1,64}$', default: 'gantry', description: 'The realm of the WWW-Authenticate challenge.' },
      forwardAuthorization: { type: 'boolean', default: false, description: 'Pass the Authorization header on to the upstream.' },
      cacheTtlMs: { type: 'integer', minimum: 0, maximum: 3600000, default: 60000, description: 'How long a verified credential is accepted without bcrypt again.' },
    },
  },
  load,
  create,
};
