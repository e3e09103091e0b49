import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** A pino logger whose lines land, parsed, in `lines`; `waitFor` resolves with the first line matching. */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[]; waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>> } {
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (const w of [...waiters]) if (w.pred(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
      }
      cb();
    },
  });
  const log = pino({ level: 'debug', base: undefined }, sink);
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`log line not seen within ${timeoutMs} ms`)), timeoutMs);
      waiters.push({ pred, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  };
  return { log, lines, waitFor };
}
