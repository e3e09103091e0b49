import { closeSync, openSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/gateway-config.js';

type Destination = ReturnType<typeof pino.destination>;

// Set on loggers made by createLogger; pino children inherit it (they are made with Object.create(parent)).
const GANTRY_FORMAT = Symbol('gantry.log-format');

/** Does `log` write Gantry's own line format (createLogger's: level labels, ISO time, no base fields)? */
export function isGantryFormat(log: Logger): boolean {
  return (log as unknown as Record<symbol, unknown>)[GANTRY_FORMAT] === true;
}

// Destinations opened on a path (not a file descriptor): only these can be reopened after logrotate renamed them.
const FILE_DESTINATIONS = new WeakSet<object>();

/**
 * One pino logger on an asynchronous destination: the event loop never waits for stdout or the disk. Lines written
 * while a write is in flight are batched into the next one, so a busy gateway makes few syscalls (LIBRARIES.md §6).
 * `dest` is a file descriptor (1 = stdout) or a file path, opened for appending; a path that cannot be opened throws
 * here, at start, rather than as an 'error' event later.
 */
export function createLogger(level: LogLevel = 'info', dest: number | string = 1): Logger {
  if (typeof dest === 'string') closeSync(openSync(dest, 'a'));
  const stream = pino.destination({ dest, sync: false });
  if (typeof dest === 'string') FILE_DESTINATIONS.add(stream);
  // Without a listener, a failed open or write (disk full, directory removed before a reopen) would end the process.
  stream.on('error', (err: Error) => { process.stderr.write(`gantry: log destination ${String(dest)}: ${err.message}\n`); });
  const log = pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    stream,
  );
  (log as unknown as Record<symbol, unknown>)[GANTRY_FORMAT] = true;
  return log;
}

function fileDestinationOf(log: Logger): Destination | undefined {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as Destination | undefined;
  return stream && FILE_DESTINATIONS.has(stream) ? stream : undefined;
}

/**
 * Reopens the log file (logrotate renamed it: SIGUSR2). Lines written before the reopen go to the renamed file, later
 * ones to a new file at the configured path; none are lost. Returns false when the log goes to a file descriptor
 * such as stdout, which has nothing to reopen.
 */
export function reopenLogFile(log: Logger): boolean {
  const stream = fileDestinationOf(log);
  if (!stream) return false;
  stream.reopen();
  return true;
}
