import type { Logger } from 'pino';
import { finishLog } from './logger.js';

/** How long the log may take to write its last lines before the process exits anyway (logger.ts, finishLog). */
export const LOG_FINISH_MS = 2_000;

/**
 * Past the drain grace, how long closing the rest (discovery watches, health checks, scalers) may take before the
 * process exits without it: a plugin whose close() never settles must not keep a stopping gateway alive.
 */
export const CLOSE_SLACK_MS = 5_000;

/**
 * The one way a gateway process ends. The first `stop()` starts `drain`, which resolves with the exit code; the
 * process then exits with it, or with 1 when any call said `failed`. Past `boundMs` (when given) it exits 1 whatever
 * the drain still waits for. Either way the log gets LOG_FINISH_MS to write its last lines, never more: whatever
 * the log destination does (a reader gone, a full pipe), the process ends.
 */
export function drainThenExit(log: Logger, drain: () => Promise<number>, boundMs?: () => number): (failed?: boolean) => void {
  let failed = false;
  let started = false;
  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    void finishLog(log, LOG_FINISH_MS).then(() => process.exit(code));
  };
  return (stopFailed = false) => {
    failed ||= stopFailed;
    if (started) return;
    started = true;
    const bound = boundMs?.();
    const timer = bound === undefined ? undefined : setTimeout(() => {
      log.error({ event: 'drain-bound', boundMs: bound }, `still stopping after ${bound} ms: exiting without waiting any longer`);
      exit(1);
    }, bound);
    void drain().catch((err: unknown) => {
      log.error({ err, event: 'drain-failed' }, 'stopping failed');
      return 1;
    }).then((code) => {
      clearTimeout(timer);
      exit(failed ? 1 : code);
    });
  };
}

/**
 * After an uncaught exception the process's state is unknown (an update half done, a callback that never ran), and
 * an unhandled rejection is a failure nobody handled: either is logged, then the process drains what it can and
 * exits 1, for its supervisor (or the cluster primary, for a worker) to start it afresh.
 */
export function exitOnFatalError(log: Logger, stop: (failed: boolean) => void): void {
  process.on('uncaughtException', (err) => {
    log.fatal({ err, event: 'uncaught-exception' }, 'uncaught exception: draining and exiting');
    stop(true);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err, event: 'unhandled-rejection' }, 'unhandled rejection: draining and exiting');
    stop(true);
  });
}
