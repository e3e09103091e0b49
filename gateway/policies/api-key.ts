import { createHash, timingSafeEqual } from 'node:crypto';
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
  // Indexed by the first 4 bytes of the key's SHA-256, then compared whole with timingSafeEqual: what a lookup's
  // timing could tell is about a hash of the key, which a client cannot steer toward a stored one.
  const byPrefix = new Map<number, StoredKey[]>();
  for (const [hex, consumer] of options.keys) {
    const digest = Buffer.from(hex, 'hex');
    const prefix = digest.readUInt32BE(0);
    const list = byPrefix.get(prefix) ?? [];
    list.push({ digest, consumer });
    byPrefix.set(prefix, list);
  }
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
      let consumer: string | undefined;
      for (const stored of byPrefix.get(digest.readUInt32BE(0)) ?? []) {
        if (timingSafeEqual(stored.digest, digest)) consumer = stored.consumer;
      }
      if (consumer === undefined) return invalid;
      ex.consumer = consumer;
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
