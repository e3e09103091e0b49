import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { GatewayConfig } from '../config/gateway-config.js';
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
