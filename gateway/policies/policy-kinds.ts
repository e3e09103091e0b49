import { apiKey } from './api-key.js';
import { basicAuth } from './basic-auth.js';
import { compress } from './compress.js';
import { cors } from './cors.js';
import { forwardAuth } from './forward-auth.js';
import { headers } from './header-rules.js';
import { ipAllow, ipDeny } from './ip-rules.js';
import { jwt } from './jwt-auth.js';
import { mirror } from './mirror.js';
import { rateLimit } from './rate-limit.js';
import { redirect } from './redirect.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { PolicyPlugin } from '../plugin-api/policy.js';
import { pluginPolicyKind } from './plugin-policy.js';
import type { PolicyKind } from './policy.js';

/**
 * Every kind of policy, by the key that names it under a policy (`ipAllow: [...]`). A new kind is a module exporting
 * a PolicyKind and one entry here; the loader, the chain and the request path need no change.
 */
const KINDS: ReadonlyMap<string, PolicyKind> = new Map(([ipAllow, ipDeny, apiKey, basicAuth, jwt, rateLimit, forwardAuth, headers, redirect, cors, compress, mirror] as PolicyKind<never>[]).map((k) => [k.kind, k as PolicyKind]));

/** Each policy plugin adapted once, however many configs use it. */
const adapted = new WeakMap<PolicyPlugin<Record<string, unknown>>, PolicyKind>();

/** A built-in kind, or a policy plugin of `plugins` (the modules under `plugins:`) as a kind. */
export function policyKind(kind: string, plugins?: PluginRegistry): PolicyKind | undefined {
  const builtin = KINDS.get(kind);
  if (builtin !== undefined || plugins === undefined) return builtin;
  const plugin = plugins.policy(kind);
  if (plugin === undefined) return undefined;
  let k = adapted.get(plugin);
  if (k === undefined) adapted.set(plugin, k = pluginPolicyKind(plugin) as PolicyKind);
  return k;
}

export function policyKindNames(plugins?: PluginRegistry): string[] {
  return [...KINDS.keys(), ...(plugins?.policyTypes() ?? [])];
}

/** Every kind's options schema, for precompile-schemas.ts. */
export function policySchemas(): Readonly<Record<string, unknown>>[] {
  return [...KINDS.values()].map((k) => k.optionsSchema);
}
