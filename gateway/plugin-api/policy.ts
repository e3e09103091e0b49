import type { PluginContext } from './plugin-context.js';

/** The request as a policy plugin sees it, before it is forwarded. */
export interface PolicyRequest {
  readonly method: string;
  /** The normalized path, before the route's rewrite. */
  readonly path: string;
  /** The routing host: lower-case, no port. */
  readonly host: string;
  /**
   * Node's header object (lower-case names): what the hook changes here is what the upstream gets. Unset a header by
   * setting it to undefined. The gateway's own (X-Forwarded-*, the request id, Host) are set after the policies.
   */
  readonly headers: Record<string, string | string[] | undefined>;
  readonly requestId: string;
  /** The consumer an earlier authentication policy established ('' when none); a hook may set it. */
  consumer: string;
  /** Aborts when the client goes: pass it to anything the hook waits on. */
  readonly signal: AbortSignal;
}

/** An answer a policy plugin gives at the edge instead of forwarding the request. */
export interface PolicyAnswer {
  readonly status: number;
  /** Flat [name, value, ...] list. */
  readonly headers?: readonly string[];
  readonly body?: string | Buffer;
}

/**
 * What a policy plugin's `create` returns. `onRequest` runs for every request of the routes that list the policy, in
 * the route's order with the other policies; it returns nothing to let the request go on, or a PolicyAnswer (a
 * promise of one only when it must wait). It must not throw (a throw is answered 500 and logged).
 * `onAnswer` may edit the head of every answer of those routes (the upstream's and the gateway's own).
 */
export interface PolicyHooks {
  onRequest?(request: PolicyRequest): PolicyAnswer | undefined | Promise<PolicyAnswer | undefined>;
  /** `headers`: the answer's flat [name, value, ...] list, edited in place. */
  onAnswer?(headers: string[], request: PolicyRequest): void;
  /** The config that created it retired (a reload, the shutdown): release what it holds. */
  close?(): void | Promise<void>;
}

/**
 * A third-party policy: a plain object exported by a module named under `plugins:`, used as `policies: { name:
 * { <type>: options } }` (docs/policies.md, "Policy plugins"). Its options are checked against `optionsSchema` (and
 * `check`) when the file is loaded, with file:line:col, like a built-in kind's. `create` runs once per config built.
 */
export interface PolicyPlugin<O = Record<string, unknown>> {
  readonly kind: 'policy';
  readonly type: string;
  readonly optionsSchema: Readonly<Record<string, unknown>>;
  /** Checks a schema cannot express; problems as [relative YAML path, message]. */
  check?(options: O): readonly (readonly [path: readonly (string | number)[], message: string])[];
  create(options: O, ctx: PluginContext): PolicyHooks | Promise<PolicyHooks>;
}

/** What a policy plugin's `type` may be: a key under a policy, so camelCase like the built-in kinds. */
export const POLICY_TYPE_PATTERN = /^[a-z][A-Za-z0-9]{0,62}$/;

/** The shape of a policy plugin; problems as sentences, empty when it is well-formed. */
export function checkPolicyPluginShape(p: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (typeof p.type !== 'string' || !POLICY_TYPE_PATTERN.test(p.type)) {
    problems.push(`type must be a letter then letters and digits (e.g. "apiVersion"), got ${JSON.stringify(p.type)}`);
  }
  if (p.optionsSchema === null || typeof p.optionsSchema !== 'object' || Array.isArray(p.optionsSchema)) problems.push('optionsSchema must be a JSON Schema object');
  if (typeof p.create !== 'function') problems.push('create(options, ctx) must be a function');
  if (p.check !== undefined && typeof p.check !== 'function') problems.push('check, when present, must be a function');
  return problems;
}
