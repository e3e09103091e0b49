import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { credentialLines } from './credential-lines.js';
import type { Policy, PolicyExchange, PolicyKind, PolicyLoadContext, Refusal, Verdict } from './policy.js';

export interface ApiKeyOptions {
  /** Lower-case header name. */
  readonly header: string;
  /** [sha256 hex of a key, consumer name] per line of the keys file. */
  readonly keys: readonly (readonly [string, string])[];
  readonly forwardKey: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;
const CONSUMER = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$/;

function load(raw: unknown, ctx: PolicyLoadContext): ApiKeyOptions {
  const o = raw as { header: string; keysFile: string; forwardKey: boolean };
  const keys: [string, string][] = [];
  const text = ctx.readFile(o.keysFile, ['keysFile']);
  const seen = new Set<string>();
  for (const { line, text: entry } of credentialLines(text ?? '')) {
    const [digest = '', consumer = '', extra] = entry.split(/\s+/);
    if (!HEX64.test(digest.toLowerCase()) || !CONSUMER.test(consumer) || extra !== undefined) {
      ctx.report(['keysFile'], `${o.keysFile} line ${line}: expected "<sha256 hex of the key> <consumer>"`);
    } else if (seen.has(digest.toLowerCase())) {
      ctx.report(['keysFile'], `${o.keysFile} line ${line}: the same key hash is listed twice`);
    } else {
      seen.add(digest.toLowerCase());
      keys.push([digest.toLowerCase(), consumer]);
    }
  }
  return { header: o.header.toLowerCase(), keys, forwardKey: o.forwardKey };
}

interface StoredKey {
  readonly digest: Buffer;
  readonly consumer: string;
}

function create(name: string, options: ApiKeyOptions): Policy {
  // Looked up by the key's SHA-256, which a client cannot steer toward a stored one, so the lookup's timing tells
  // nothing; then one timingSafeEqual against what was found, or against a decoy when nothing was: every key, known,
  // unknown or wrong, costs one hash and one comparison.
  const byDigest = new Map<string, StoredKey>();
  for (const [hex, consumer] of options.keys) byDigest.set(hex, { digest: Buffer.from(hex, 'hex'), consumer });
  const decoy: StoredKey = { digest: randomBytes(32), consumer: '' };
  const header = options.header;
  const challenge = ['www-authenticate', `ApiKey header="${header}"`];
  const missing: Refusal = { code: 'GW_ERR_UNAUTHORIZED', reason: 'missing', headers: challenge };
  const invalid: Refusal = { code: 'GW_ERR_UNAUTHORIZED', reason: 'invalid', headers: challenge };
  const step = {
    policy: name,
    kind: 'apiKey',
    apply(ex: PolicyExchange): Verdict {
      const headers = ex.req.headers;
      const key = headers[header];
      if (key === undefined || key === '') return missing;
      if (typeof key !== 'string') return invalid;   // sent twice
      const digest = createHash('sha256').update(key).digest();
      const stored = byDigest.get(digest.toString('hex')) ?? decoy;
      if (!timingSafeEqual(stored.digest, digest) || stored === decoy) return invalid;
      ex.consumer = stored.consumer;
      // Unset, not deleted (forwarded-headers.ts says why): the upstream never sees the key.
      if (!options.forwardKey) headers[header] = undefined;
      return undefined;
    },
  };
  return { forRoute: () => step };
}

/**
 * `apiKey: { header, keysFile }`: a key in the header, looked up among the SHA-256 hashes of the keys file (re-read
 * on every reload); the consumer named beside it becomes the request's. The key is not forwarded unless `forwardKey`.
 */
export const apiKey: PolicyKind<ApiKeyOptions> = {
  kind: 'apiKey',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['keysFile'],
    properties: {
      header: { type: 'string', pattern: '^[A-Za-z0-9-]+$', default: 'x-api-key', description: 'The request header carrying the key.' },
      keysFile: { type: 'string', minLength: 1, description: 'Lines of "<sha256 hex of a key> <consumer>" (relative to the routes file); # comments.' },
      forwardKey: { type: 'boolean', default: false, description: 'Pass the key on to the upstream.' },
    },
  },
  load,
  create,
};
