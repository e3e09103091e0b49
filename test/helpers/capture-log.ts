import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** A pino logger whose lines land, parsed, in `lines` (synchronously), for tests that read logs. */
export function captureLog(level: pino.LevelWithSilent = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level, base: undefined }, sink), lines };
}

/** Polls `pred` every `everyMs` until it holds or `timeoutMs` passes; resolves with the elapsed milliseconds. */
export async function waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition', everyMs = 5): Promise<number> {
  const started = Date.now();
  while (!pred()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Date.now() - started;
}
