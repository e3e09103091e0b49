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

/**
 * Polls `probe` every `everyMs` until it returns something other than `false` or `undefined` (a predicate's `true`,
 * or the value looked for) and resolves with that; rejects with `what` once `timeoutMs` passed. The probe may be async.
 * The one way tests wait: for a condition, never for a fixed time.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, timeoutMs = 5000, what = 'condition', everyMs = 5): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== false && value !== undefined) return value as Exclude<T, false | undefined>;
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
