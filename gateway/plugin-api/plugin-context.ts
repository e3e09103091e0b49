import type { Logger } from 'pino';

/** What core hands every plugin instance: its own child logger, a signal aborted when the plugin is closed, a clock. */
export interface PluginContext {
  readonly log: Logger;
  /** Aborted when the gateway no longer needs this instance (reload dropped it, or shutdown). */
  readonly signal: AbortSignal;
  /** Milliseconds, injectable so tests are exact. */
  now(): number;
}
