import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';

/** What core hands every plugin instance: its own child logger, a signal aborted when the plugin is closed, a clock. */
export interface PluginContext {
  readonly log: Logger;
  /** Aborted when the gateway no longer needs this instance (reload dropped it, or shutdown). */
  readonly signal: AbortSignal;
  /** Milliseconds, injectable so tests are exact. */
  now(): number;
  /** The routes file's directory (absolute): relative paths in a plugin's options start here, as core's own do. */
  readonly baseDir: string;
  /**
   * A path from the plugin's options as a file name: relative to `baseDir`, `~/…` in the home directory, absolute
   * unchanged. Call it when the instance is created, not per request.
   */
  resolvePath(path: string): string;
}

/** `path` as the routes file in `baseDir` means it (PluginContext.resolvePath). */
export function resolveConfigPath(baseDir: string, path: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** The context core gives a plugin instance it creates. */
export function pluginContext(log: Logger, signal: AbortSignal, now: () => number, baseDir: string): PluginContext {
  return { log, signal, now, baseDir, resolvePath: (path) => resolveConfigPath(baseDir, path) };
}
