import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { isLoopbackHost } from '../config/check-admin-auth.js';
import type { GatewayConfig, ListenAddress } from '../config/gateway-config.js';
import { ConfigError } from '../errors.js';

/** Shorter tokens are refused: the admin API can reload the config and reveals the routing table. */
export const MIN_TOKEN_LENGTH = 16;

export interface ResolvedToken {
  readonly token: string;
  /** Where it came from, for logs (never the token itself). */
  readonly source: string;
  /** Set when the token file can be read by every user on the host. */
  readonly warning?: string;
}

function problem(config: GatewayConfig, path: string, message: string, cause?: unknown): ConfigError {
  return new ConfigError([{ file: config.file, line: 0, col: 0, path, message }], { cause });
}

/**
 * Reads the admin token named by `adminAuth` (null when there is none). Throws ConfigError when the file cannot be
 * read, the variable is unset, or the token is too short. A file is read whole, without its trailing newline.
 */
export async function resolveAdminToken(config: GatewayConfig, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedToken | null> {
  const auth = config.adminAuth;
  if (!auth) return null;
  let token: string;
  let source: string;
  let warning: string | undefined;
  if (auth.tokenFile !== undefined) {
    const file = resolve(dirname(config.file), auth.tokenFile);
    source = `file ${file}`;
    try {
      token = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
      if (((await stat(file)).mode & 0o004) !== 0) warning = `the admin token file ${file} is readable by every user: chmod 600 it`;
    } catch (err) {
      throw problem(config, 'adminAuth.tokenFile', `cannot read the admin token: ${(err as Error).message}`, err);
    }
  } else {
    const name = auth.tokenEnv as string;
    source = `environment variable ${name}`;
    token = env[name] ?? '';
    if (!token) throw problem(config, 'adminAuth.tokenEnv', `the environment variable ${name} is not set or empty`);
  }
  const at = auth.tokenFile !== undefined ? 'adminAuth.tokenFile' : 'adminAuth.tokenEnv';
  if (token.length < MIN_TOKEN_LENGTH) throw problem(config, at, `the admin token from ${source} is shorter than ${MIN_TOKEN_LENGTH} characters`);
  if (/[\s\x00-\x1f\x7f]/.test(token)) throw problem(config, at, `the admin token from ${source} contains whitespace or control characters`);
  return { token, source, warning };
}

/**
 * The admin token in force for one admin listener. Read at start, where a listener beyond loopback without a token
 * is a start error (never an open admin API), and again on each reload (rotating the token file needs only a
 * reload), where a token that cannot be read keeps the previous one.
 */
export class AdminToken {
  #current: ResolvedToken | null = null;

  /** `listener`: the admin address actually bound (the file's, or an override); null when there is none. */
  constructor(private readonly listener: ListenAddress | null, private readonly log: Logger) {}

  /** The bearer token requests need; null when none is configured (loopback only). */
  get token(): string | null {
    return this.#current?.token ?? null;
  }

  /** At start: throws ConfigError when the token cannot be read, or is missing for a listener beyond loopback. */
  async load(config: GatewayConfig): Promise<void> {
    this.#current = await this.#resolve(config);
    if (this.#current?.warning) this.log.warn({ event: 'admin-token-readable' }, this.#current.warning);
  }

  /** After a reload, from the serving config: the new token, or the previous one if the new one cannot be used. */
  async reread(config: GatewayConfig): Promise<void> {
    try {
      const next = await this.#resolve(config);
      if (next?.token !== this.#current?.token) this.log.info({ event: 'admin-token-changed', source: next?.source ?? null }, 'admin token changed');
      this.#current = next;
    } catch (err) {
      this.log.error({ event: 'admin-token-kept', err: (err as Error).message }, 'cannot read the new admin token: keeping the previous one');
    }
  }

  async #resolve(config: GatewayConfig): Promise<ResolvedToken | null> {
    const resolved = await resolveAdminToken(config);
    if (!resolved && this.listener && !isLoopbackHost(this.listener.host)) {
      throw problem(config, 'admin', `the admin listener on ${this.listener.host} needs adminAuth (a bearer token)`);
    }
    return resolved;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Checks `Authorization: Bearer <token>` in constant time (comparing digests, so the length does not leak either). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m) return false;
  return timingSafeEqual(digest(m[1] as string), digest(token));
}
