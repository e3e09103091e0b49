import { apiKey } from './api-key.js';
import { basicAuth } from './basic-auth.js';
import { forwardAuth } from './forward-auth.js';
import { ipAllow, ipDeny } from './ip-rules.js';
import { jwt } from './jwt-auth.js';
import { rateLimit } from './rate-limit.js';
import type { PolicyKind } from './policy.js';

/**
 * Every kind of policy, by the key that names it under a policy (`ipAllow: [...]`). A new kind is a module exporting
 * a PolicyKind and one entry here; the loader, the chain and the request path need no change.
 */
const KINDS: ReadonlyMap<string, PolicyKind> = new Map(([ipAllow, ipDeny, apiKey, basicAuth, jwt, rateLimit, forwardAuth] as PolicyKind<never>[]).map((k) => [k.kind, k as PolicyKind]));

export function policyKind(kind: string): PolicyKind | undefined {
  return KINDS.get(kind);
}

export function policyKindNames(): string[] {
  return [...KINDS.keys()];
}

/** Every kind's options schema, for precompile-schemas.ts. */
export function policySchemas(): Readonly<Record<string, unknown>>[] {
  return [...KINDS.values()].map((k) => k.optionsSchema);
}
