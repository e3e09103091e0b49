import { closeSync, fstatSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { GatewayConfig, LogLevel } from './config/gateway-config.js';
import { ConfigError } from './errors.js';

type Destination = ReturnType<typeof pino.destination>;

// Set on loggers made by createLogger; pino children inherit it (they are made with Object.create(parent)).
const GANTRY_FORMAT = Symbol('gantry.log-format');

/** Does `log` write Gantry's own line format (createLogger's: level labels, ISO time, no base fields)? */
export function isGantryFormat(log: Logger): boolean {
  return (log as unknown as Record<symbol, unknown>)[GANTRY_FORMAT] === true;
}

// Destinations opened on a path (not a file descriptor): only these can be reopened after logrotate renamed them.
const FILE_DESTINATIONS = new WeakSet<object>();
// Destinations written asynchronously (finishLog waits for them), and those whose reader went away (EPIPE: pino
// then drops every later line).
const ASYNC_DESTINATIONS = new WeakSet<object>();
const BROKEN_DESTINATIONS = new WeakSet<object>();

/**
 * One pino logger. `dest` is a file descriptor (1 = stdout) or a file path, opened for appending; a path that cannot
 * be opened throws here, at start, rather than as an 'error' event later.
 *
 * A regular file is written synchronously, anything else (a pipe, a named pipe, a socket, a terminal)
 * asynchronously. Why: the access log hands over one batch of lines per event-loop turn (proxy/access-log.ts), and
 * an asynchronous write costs a thread-pool round trip per batch: 2.5-3.4 µs of CPU per line against 1.4-1.8 µs
 * written synchronously, in batches of 12 lines to a file on the 2-core VM (bench/RESULTS.md
 * "Access log writes"). A write to a file lands in the page cache, as nginx's access log does; a pipe or a socket
 * can stall on a slow reader, so those keep the event loop out of it.
 */
export function createLogger(level: LogLevel = 'info', dest: number | string = 1): Logger {
  const fd = typeof dest === 'string' ? openSync(dest, 'a') : dest;
  const sync = isRegularFile(fd);   // a named pipe given as log.file is a pipe all the same
  if (fd !== dest) closeSync(fd);
  const stream = pino.destination({ dest, sync });
  if (typeof dest === 'string') FILE_DESTINATIONS.add(stream);
  if (!sync) ASYNC_DESTINATIONS.add(stream);
  // Without a listener, a failed open or write (disk full, directory removed before a reopen) would end the process.
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') BROKEN_DESTINATIONS.add(stream);
    process.stderr.write(`gantry: log destination ${String(dest)}: ${err.message}\n`);
  });
  const log = pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    stream,
  );
  (log as unknown as Record<symbol, unknown>)[GANTRY_FORMAT] = true;
  return log;
}

/**
 * The logger a routes file asks for: its `log.level`, to `log.file` (relative to the routes file) or stdout, with
 * `bindings` on every line. A file that cannot be opened is a ConfigError.
 */
export function openConfiguredLog(config: GatewayConfig, bindings?: Record<string, unknown>): Logger {
  const file = config.log.file === undefined ? undefined : resolve(dirname(config.file), config.log.file);
  let log: Logger;
  try {
    log = createLogger(config.log.level, file ?? 1);
  } catch (err) {
    throw new ConfigError([{ file: config.file, line: 0, col: 0, path: 'log.file', message: `cannot open ${file}: ${(err as Error).message}` }], { cause: err });
  }
  return bindings ? log.child(bindings) : log;
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;   // a closed descriptor: pino reports the failed writes
  }
}

function destinationOf(log: Logger): Destination | undefined {
  return (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as Destination | undefined;
}

function fileDestinationOf(log: Logger): Destination | undefined {
  const stream = destinationOf(log);
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

/**
 * Before the process exits: waits (at most `timeoutMs`) until what was handed to an asynchronous destination is
 * written or its write failed, then turns off the destination's flush at exit. That flush (pino's, sonic-boom's
 * flushSync) retries a failed write forever: a reader that went away (EPIPE: `gantry start | tee` on Ctrl-C) held
 * the process, and with --workers the primary waiting for it, for good. Lines a destination could not take by then
 * are dropped. A regular file is written synchronously: nothing to wait for.
 *
 * Not covered: a pipe whose reader stays but stops reading. Standard output is a blocking descriptor, so the write
 * under way blocks a thread-pool thread, and Node's exit waits for that thread.
 */
export function finishLog(log: Logger, timeoutMs: number): Promise<void> {
  const stream = destinationOf(log);
  if (!stream || !ASYNC_DESTINATIONS.has(stream)) return Promise.resolve();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      stream.off('drain', done);
      stream.off('error', done);
      stream.flushSync = () => {};
      resolve();
    };
    if (BROKEN_DESTINATIONS.has(stream)) { done(); return; }
    timer = setTimeout(done, timeoutMs);
    stream.once('drain', done);
    stream.once('error', done);
    // An empty write is queued behind the pending ones: its 'drain' says every line before it was written.
    stream.write('');
  });
}
