import pino, { type Logger } from 'pino';
import { isGantryFormat } from '../logger.js';
import type { Exchange } from './exchange.js';

export interface AccessLog {
  /** The access logger (`log: "access"`), for lines other than requests (WebSocket upgrades). */
  readonly logger: Logger;
  /** Writes the access line of a finished exchange. */
  request(ex: Exchange, aborted: boolean): void;
  /** Hands the lines batched in this turn to the log stream now (before a shutdown's last flush, a reopen). */
  flush(): void;
}

const str = JSON.stringify;

/** The access line's fields, in the order they are written; undefined ones are left out (as pino does). */
function fields(ex: Exchange, aborted: boolean) {
  return {
    reqId: ex.requestId, method: ex.req.method, host: ex.host, path: ex.path, route: ex.route?.name, service: ex.route?.service,
    endpoint: ex.endpoint?.address, status: ex.status, durationMs: ex.durationMs(), bytes: ex.bytes,
    attempts: ex.attempts > 1 ? ex.attempts : undefined, err: ex.errorCode, aborted: aborted || undefined,
    retryBudgetExhausted: ex.budgetExhausted || undefined,
    traceId: ex.traceId || undefined,
  };
}

/**
 * The access log of `log` (a child with `log: "access"` is made here). On a logger made by createLogger, whose
 * format is fixed (level label, ISO time, no base), the line is built here as one template string, the same bytes
 * pino writes (test/unit/access-log.test.ts holds them equal): pino's generic serializer, walking the object key by
 * key, was 8 % of the gateway's CPU on the 100-byte keep-alive benchmark and this line costs about a third of it
 * (bench/RESULTS.md). Any other logger (tests, embedders) gets `info(fields, 'request')` through pino.
 *
 * The lines of one event-loop turn go to the stream as one write, and the ISO time is formatted once per millisecond.
 * Why: pino's destination (sonic-boom 4) measures the UTF-8 length of its whole pending buffer on every write, and a
 * write per line cost 12-15 µs of CPU per request against 1-2 µs batched (bench/RESULTS.md, "access log"). A line
 * can therefore follow a gateway log line written later in the same turn; each line carries its own time.
 */
export function createAccessLog(log: Logger): AccessLog {
  const access = log.child({ log: 'access' });
  if (!isGantryFormat(log)) {
    return { logger: access, request: (ex, aborted) => { if (log.isLevelEnabled('info')) access.info(fields(ex, aborted), 'request'); }, flush: () => {} };
  }
  const stream = (access as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym] as { write(s: string): void };
  const bindings = (access as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] as string;
  let batch = '';
  let isoMs = 0;
  let iso = '';
  function flush(): void {
    if (batch === '') return;
    const lines = batch;
    batch = '';
    stream.write(lines);
  }
  function request(ex: Exchange, aborted: boolean): void {
    // The root's level: a reload changes it there, and pino children keep the level they were made with.
    if (!log.isLevelEnabled('info')) return;
    const route = ex.route;
    const endpoint = ex.endpoint;
    const now = Date.now();
    if (now !== isoMs) { isoMs = now; iso = new Date(now).toISOString(); }
    if (batch === '') setImmediate(flush);
    batch += `{"level":"info","time":"${iso}"${bindings},"reqId":${str(ex.requestId)},"method":${str(ex.req.method)},"host":${str(ex.host)},"path":${str(ex.path)}${
      route === undefined ? '' : `,"route":${str(route.name)},"service":${str(route.service)}`}${
      endpoint === undefined ? '' : `,"endpoint":${str(endpoint.address)}`},"status":${ex.status},"durationMs":${ex.durationMs()},"bytes":${ex.bytes}${
      ex.attempts > 1 ? `,"attempts":${ex.attempts}` : ''}${ex.errorCode === undefined ? '' : `,"err":${str(ex.errorCode)}`}${
      aborted ? ',"aborted":true' : ''}${ex.budgetExhausted ? ',"retryBudgetExhausted":true' : ''}${
      ex.traceId ? `,"traceId":${str(ex.traceId)}` : ''},"msg":"request"}\n`;
  }
  return { logger: access, request, flush };
}
