import type { JWTPayload, JWTVerifyGetKey, jwtVerify as JwtVerify } from 'jose';
import type { Policy, PolicyBuildContext, PolicyExchange, PolicyKind, PolicyLoadContext, Refusal, Verdict } from './policy.js';

export interface JwtOptions {
  readonly jwksUrl: string;
  readonly issuer?: string | readonly string[];
  readonly audience?: string | readonly string[];
  readonly algorithms: readonly string[];
  /** Claim name → lower-case upstream header name. */
  readonly claimsToHeaders: Readonly<Record<string, string>>;
  readonly clockSkewS: number;
  readonly consumerClaim: string;
  readonly forwardToken: boolean;
  readonly maxTokenBytes: number;
  readonly jwksCooldownMs: number;
  readonly jwksTimeoutMs: number;
  readonly jwksCacheMaxAgeMs: number;
}

// Asymmetric only: the keys come from a JWKS, public keys, and an HMAC "verified" with a public key is a forgery
// anyone can make. `none` is never a signature.
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
// What a claim may carry into a header: visible ASCII, space and tab (anything else is left out, never sent).
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

function load(raw: unknown, ctx: PolicyLoadContext): JwtOptions {
  const o = raw as JwtOptions;
  let url: URL | undefined;
  try { url = new URL(o.jwksUrl); } catch { /* reported below */ }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) ctx.report(['jwksUrl'], `"${o.jwksUrl}" is not an http:// or https:// URL`);
  o.algorithms.forEach((alg, i) => {
    if (!ASYMMETRIC.includes(alg)) ctx.report(['algorithms', i], `"${alg}" is not allowed: only asymmetric algorithms (${ASYMMETRIC.join(', ')}); never none, never HS* with a JWKS's public keys`);
  });
  const claimsToHeaders = Object.fromEntries(Object.entries(o.claimsToHeaders).map(([claim, header]) => [claim, header.toLowerCase()]));
  return { ...o, claimsToHeaders };
}

/** Why a token was refused, as a metric reason and RFC 6750's error description (fixed text, never the client's). */
function reasonOf(err: unknown): { reason: string; description: string } {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED': return { reason: 'expired', description: 'the token has expired' };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return { reason: 'not-yet-valid', description: 'the token is not valid yet' };
      if (e.claim === 'aud') return { reason: 'audience', description: 'the token is for another audience' };
      if (e.claim === 'iss') return { reason: 'issuer', description: 'the token is from another issuer' };
      return { reason: 'claims', description: 'a claim is not as expected' };
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return { reason: 'algorithm', description: 'the token\'s algorithm is not allowed' };
    case 'ERR_JWKS_NO_MATCHING_KEY': return { reason: 'unknown-key', description: 'no key matches the token' };
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return { reason: 'signature', description: 'the signature does not verify' };
    default: return { reason: 'invalid', description: 'the token is malformed' };
  }
}

/** The JWKS could not be fetched (down, slow, not a key set): the token cannot be judged either way. */
function jwksUnavailable(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || code === 'ERR_JOSE_GENERIC' || (err instanceof TypeError && (err as Error).message === 'fetch failed');
}

async function create(name: string, options: JwtOptions, ctx: PolicyBuildContext): Promise<Policy> {
  const jose = await import('jose');
  const verify: typeof JwtVerify = jose.jwtVerify;
  // The key set outlives the config (shared by URL and fetch settings): a reload that keeps the policy does not
  // refetch it. An unknown kid makes jose refetch, at most once per cooldown (concurrent requests share that fetch).
  const keySet = ctx.runtime.share(`jwks ${options.jwksUrl} ${options.jwksCooldownMs} ${options.jwksTimeoutMs} ${options.jwksCacheMaxAgeMs}`, () => jose.createRemoteJWKSet(new URL(options.jwksUrl), {
    cooldownDuration: options.jwksCooldownMs, timeoutDuration: options.jwksTimeoutMs, cacheMaxAge: options.jwksCacheMaxAgeMs,
  }));
  const keys = keySet.value as JWTVerifyGetKey;
  const verifyOptions = {
    issuer: options.issuer as string | string[] | undefined, audience: options.audience as string | string[] | undefined,
    algorithms: [...options.algorithms], clockTolerance: options.clockSkewS,
  };
  const claimHeaders = Object.entries(options.claimsToHeaders);
  const log = ctx.runtime.log;
  const missing: Refusal = { code: 'GW_ERR_UNAUTHORIZED', reason: 'missing', headers: ['www-authenticate', 'Bearer realm="gantry"'] };
  const refusals = new Map<string, Refusal>();
  const refusal = (r: { reason: string; description: string }): Refusal => {
    let found = refusals.get(r.reason);
    if (found === undefined) {
      found = { code: 'GW_ERR_UNAUTHORIZED', reason: r.reason, headers: ['www-authenticate', `Bearer realm="gantry", error="invalid_token", error_description="${r.description}"`] };
      refusals.set(r.reason, found);
    }
    return found;
  };
  const tooLarge = refusal({ reason: 'too-large', description: 'the token is too large' });
  const unavailable: Refusal = { code: 'GW_ERR_AUTH_UNAVAILABLE', reason: 'jwks-unavailable', headers: ['retry-after', '1'] };

  function passed(ex: PolicyExchange, payload: JWTPayload): undefined {
    const headers = ex.req.headers;
    for (const [claim, header] of claimHeaders) {
      const value = payload[claim];
      if (value === undefined || value === null) continue;
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      if (HEADER_VALUE.test(text)) headers[header] = text;
    }
    const consumer = payload[options.consumerClaim];
    if (typeof consumer === 'string') ex.consumer = consumer;
    if (!options.forwardToken) headers.authorization = undefined;
    return undefined;
  }

  async function check(ex: PolicyExchange, token: string): Promise<Verdict> {
    try {
      const { payload } = await verify(token, keys, verifyOptions);
      return passed(ex, payload);
    } catch (err) {
      if (jwksUnavailable(err)) {
        log.warn({ err, policy: name, jwksUrl: options.jwksUrl, reqId: ex.requestId }, 'the JWKS could not be fetched; answering 503');
        return unavailable;
      }
      return refusal(reasonOf(err));
    }
  }

  const step = {
    policy: name,
    kind: 'jwt',
    apply(ex: PolicyExchange): Verdict | Promise<Verdict> {
      const headers = ex.req.headers;
      // Headers the gateway sets from claims are never the client's, whatever the verdict.
      for (const [, header] of claimHeaders) if (headers[header] !== undefined) headers[header] = undefined;
      const value = headers.authorization;
      if (value === undefined || !/^bearer /i.test(value)) return missing;
      if (value.length - 7 > options.maxTokenBytes) return tooLarge;
      return check(ex, value.slice(7).trim());
    },
  };
  return { forRoute: () => step, close: () => keySet.release() };
}

const stringOrList = { oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }] };

/**
 * `jwt: { jwksUrl, issuer, audience, algorithms, claimsToHeaders, clockSkewS }`: a Bearer token verified with jose
 * against the keys of a JWKS (fetched, cached, refetched for an unknown kid at most once per cooldown).
 */
export const jwt: PolicyKind<JwtOptions> = {
  kind: 'jwt',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['jwksUrl', 'algorithms'],
    properties: {
      jwksUrl: { type: 'string', minLength: 1, description: 'Where the JSON Web Key Set is fetched.' },
      issuer: { ...stringOrList, description: 'The expected `iss` (or one of them).' },
      audience: { ...stringOrList, description: 'The expected `aud` (or one of them).' },
      algorithms: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string' }, description: 'Accepted signature algorithms: asymmetric only.' },
      claimsToHeaders: { type: 'object', default: {}, propertyNames: { minLength: 1 }, additionalProperties: { type: 'string', pattern: '^[A-Za-z0-9-]+$' }, description: 'Claim → upstream header; client-sent copies are removed.' },
      clockSkewS: { type: 'integer', minimum: 0, maximum: 300, default: 30, description: 'Tolerance on exp and nbf.' },
      consumerClaim: { type: 'string', minLength: 1, default: 'sub', description: 'The claim that names the consumer.' },
      forwardToken: { type: 'boolean', default: false, description: 'Pass the Authorization header on to the upstream.' },
      maxTokenBytes: { type: 'integer', minimum: 256, maximum: 65536, default: 8192, description: 'A longer token is refused before it is parsed.' },
      jwksCooldownMs: { type: 'integer', minimum: 0, default: 30000, description: 'At most one refetch for unknown kids per this.' },
      jwksTimeoutMs: { type: 'integer', minimum: 1, maximum: 60000, default: 5000, description: 'Bound on one JWKS fetch.' },
      jwksCacheMaxAgeMs: { type: 'integer', minimum: 1000, default: 600000, description: 'A key set older than this is refetched.' },
    },
  },
  load,
  create,
};
