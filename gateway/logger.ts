import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/gateway-config.js';

/**
 * One pino logger on an asynchronous destination: the event loop never waits for stdout. Lines written while a
 * write is in flight are batched into the next one, so a busy gateway makes few syscalls (LIBRARIES.md §6).
 */
export function createLogger(level: LogLevel = 'info', dest: number | string = 1): Logger {
  return pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    pino.destination({ dest, sync: false }),
  );
}
