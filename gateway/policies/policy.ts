import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import type { RateLimiter, RateLimitStoreConfig } from './rate-limiter.js';
import type { ServiceRuntime } from '../resilience/service-policy.js';
import type { Shared } from './shared-resources.js';

/**
 * What a policy sees of a request: its head (headers may be changed: a credential removed, a claim added) and the
 * identity an earlier policy established. The proxy's Exchange is one.
 */
export interface PolicyExchange {
  readonly req: IncomingMessage;
  readonly requestId: string;
  /** The normalized path, before the route's rewrite (what the route matched). */
  readonly path: string;
  /** The routing host: lower-case, without the port ('' for an HTTP/1.0 request without Host). */
  readonly host: string;
  /** Who the request is from, as an authentication policy established it ('' until one did); in the access log. */
  consumer: string;
  /**
   * Fields the gateway sets on the request's answer, whatever it is (the upstream's, an error, a refusal), as a flat
   * [name, value, ...] list; null until a step adds one (a rate limit's RateLimit-Policy and RateLimit). They replace
   * the upstream's fields of the same names.
   */
  answerHeaders: string[] | null;
  /**
   * Edits of the request's answer head, whatever answers it (the upstream, the gateway's own error, a refusal, a
   * policy's answer at the edge), applied in the order the steps added them, after `answerHeaders`; null until a step
   * adds one (a header rule, CORS). A step pushes an edit it made once, not one per request.
   */
  answerEdits: AnswerEdit[] | null;
  /**
   * What the upstream's answer body goes through on its way to the client (compress: a zlib stream); null: written
   * as it comes. Only the upstream's answers: the gateway's own are short and written whole. One per request (the
   * last step to set it wins).
   */
  answerBody: AnswerBodyFilter | null;
  /**
   * Called with the request's body once the gateway holds all of it (a body it buffers for retries: up to the
   * service's `retry.bufferBodyBytes`), or with null when the body is streamed to the upstream instead (too large, or
   * of unknown length: never held). A mirror copies the body with it. Null: nobody asks; one per request.
   */
  bodyCopy: ((body: Buffer | null) => void) | null;
  /** The client has gone: no answer is awaited, and the chain stops at the step under way. */
  readonly closed: boolean;
  /**
   * Aborts when the client goes: a step that waits on another service passes it on, so that call ends too. Made on
   * first read (a request whose policies never wait makes none).
   */
  readonly signal: AbortSignal;
}

/** Changes an answer's head before it is written: `headers` is its flat [name, value, ...] list, edited in place. */
export interface AnswerEdit {
  edit(headers: string[], ex: PolicyExchange): void;
}

/**
 * Decides, once the upstream's answer head is known (after the answer edits), whether its body is transformed: edits
 * `headers` (a flat [name, value, ...] list) for what it will be (Content-Encoding, no Content-Length) and returns the
 * stream the body is written to, which the gateway pipes to the client (backpressure kept: a full client pauses the
 * stream, a full stream pauses the upstream); null leaves the body as it is.
 */
export interface AnswerBodyFilter {
  start(headers: string[], status: number, ex: PolicyExchange): Duplex | null;
}

/** A refusal the gateway answers with its own JSON error (docs/errors.md), plus the kind's headers. */
export interface ErrorRefusal {
  readonly code: ErrorCode;
  /** A short fixed word for the metrics (`missing`, `invalid`, `expired`...): never anything the client sent. */
  readonly reason: string;
  /** Extra response headers as a flat [name, value, ...] list (WWW-Authenticate, Retry-After, RateLimit). */
  readonly headers?: readonly string[];
}

/**
 * A refusal answered with another service's answer (forwardAuth: the auth service's status, headers and body), or an
 * answer a policy gives at the edge instead of the upstream (a redirect, a CORS preflight).
 */
export interface RelayedRefusal {
  readonly relay: { readonly status: number; readonly headers: readonly string[]; readonly body: Buffer };
  readonly reason: string;
}

export type Refusal = ErrorRefusal | RelayedRefusal;

/** undefined lets the request go on to the next policy. */
export type Verdict = Refusal | undefined;

/**
 * One policy as it runs on one route. `apply` is called once per request, in the route's order; it answers at once
 * when it can (a synchronous verdict costs no promise) and with a promise when it must wait (a JWKS fetch, a store).
 * It must not throw; a promise it returns must not reject (either is a gateway bug, answered 500).
 */
export interface PolicyStep {
  readonly policy: string;
  readonly kind: string;
  apply(ex: PolicyExchange): Verdict | Promise<Verdict>;
}

/** A policy built for one config: a step per route that lists it, and what it holds released with the config. */
export interface Policy {
  /** Per-route work done once (a rate limit's bucket prefix): the route's name scopes what needs scoping. */
  forRoute(route: string): PolicyStep;
  /** The config that built it is retired: close connections, timers. */
  close?(): Promise<void> | void;
}

/** Counts each policy's decisions (admin/policy-metrics.ts); called on the request path, so cheap. */
export interface PolicyEvents {
  decisions(policy: string, kind: string): PolicyDecisions;
  /** The shared rate-limit store (Redis) answers, or stopped answering. */
  rateLimitStore(up: boolean): void;
  /** A request could not use the rate-limit store (down, past its timeout, or skipped while it is). */
  rateLimitStoreFailed(): void;
  /** A mirror policy's copy: sent, dropped (too many under way), failed (no answer in time, refused), skipped (a body, no endpoint). */
  mirrored?(policy: string, outcome: 'sent' | 'dropped' | 'failed' | 'skipped'): void;
}

export interface PolicyDecisions {
  allowed(): void;
  refused(reason: string): void;
}

/** What outlives one config: state that must survive a reload (rate-limit buckets, fetched keys) and the reporters. */
export interface PolicyRuntime {
  readonly log: Logger;
  readonly events: PolicyEvents;
  /** The gateway's own rate-limit buckets: in this process, or with --workers in the primary. */
  readonly localLimiter: RateLimiter;
  /**
   * What policies share across configs under `key` (a fetched key set, a Redis client): made by `make` for the first
   * policy that asks, handed to every later one asking with the same key, and closed (`close`) once every holder
   * released it. A policy releases what it holds in its `close()`; a reload builds the new config before the old one
   * retires, so what both use carries over (shared-resources.ts).
   */
  share<T>(key: string, make: () => T, close?: (value: T) => unknown): Shared<T>;
}

/** What a kind gets at load, to check its options beyond their schema and to read the files they name. */
export interface PolicyLoadContext {
  /** A problem at `path` under the policy's options (`[]`: the options themselves). */
  report(path: readonly (string | number)[], message: string): void;
  /** The text of a file named by the option at `path` (relative to the routes file); undefined after reporting it. */
  readFile(file: string, path: readonly (string | number)[]): string | undefined;
  /** The config's `server.requestIdHeader`, lower-case: the gateway's own header, which no policy may change. */
  readonly requestIdHeader: string;
  /** The config's service names (a mirror names one). */
  readonly services: ReadonlySet<string>;
}

/** What a kind gets when a config is built: what outlives the config (runtime), and the client address as trustedProxies decide it. */
export interface PolicyBuildContext {
  readonly runtime: PolicyRuntime;
  readonly clientAddress: (req: IncomingMessage) => string;
  /** The config's `rateLimitStore:`; null: the gateway's own buckets (`runtime.localLimiter`). */
  readonly rateLimitStore: RateLimitStoreConfig | null;
  /** The routes file's directory: where a policy plugin's relative paths start (PluginContext.baseDir). */
  readonly baseDir: string;
  /** The config's services, once built (after the policies): read at request time, never while building. */
  readonly services: () => ReadonlyMap<string, ServiceRuntime>;
}

/**
 * A kind of policy, registered by name (policy-kinds.ts). `load` runs when the file is loaded (validate, a reload):
 * it turns the schema-checked options into what `create` needs, reading files then, so a reload re-reads them and a
 * file that changed makes the config's hash change. `create` runs for each config built from it.
 */
export interface PolicyKind<Options = unknown> {
  readonly kind: string;
  /** JSON Schema of the options (the value under the kind's key), precompiled at build time like plugins' schemas. */
  readonly optionsSchema: Readonly<Record<string, unknown>>;
  load(options: unknown, ctx: PolicyLoadContext): Options;
  /** May import what the kind needs on first use (a JWT library, a Redis client): a config without it loads none. */
  create(name: string, options: Options, ctx: PolicyBuildContext): Policy | Promise<Policy>;
}
