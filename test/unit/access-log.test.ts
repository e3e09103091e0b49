import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { createLogger } from '../../gateway/logger.js';
import { createAccessLog, hundredthsText, isoTimeOf } from '../../gateway/proxy/access-log.js';
import { requestIdFrom } from '../../gateway/proxy/request-id.js';
import { applyTraceContext } from '../../gateway/proxy/trace-context.js';
import type { Exchange } from '../../gateway/proxy/exchange.js';

/** A finished exchange as the access log reads it. */
function exchange(over: Partial<Record<string, unknown>>): Exchange {
  return {
    requestId: 'r-1', req: { method: 'GET' }, host: 'api.example', path: '/a/b', route: { name: 'api', service: 'svc' },
    endpoint: { address: 'http://127.0.0.1:8080' }, status: 200, durationMs: () => 1.25, durationHundredths: () => 125, bytes: 100, attempts: 1,
    errorCode: undefined, budgetExhausted: false, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', consumer: '',
    ...over,
  } as unknown as Exchange;
}

const CASES: [string, Exchange, boolean][] = [
  ['every field', exchange({ attempts: 3, errorCode: 'GW_ERR_UPSTREAM_TIMEOUT', budgetExhausted: true }), true],
  ['no route, no endpoint, no trace', exchange({ route: undefined, endpoint: undefined, traceId: '', status: 404, errorCode: 'GW_ERR_NO_ROUTE', bytes: 87 }), false],
  ['strings that need escaping', exchange({ requestId: 'a.b:c@d+e=f/g-h_1', path: '/caf\u00e9/"q"', host: 'a"b\\c\u0001' }), false],
  ['plain ASCII at the edges of the quoted-as-is range', exchange({ path: '/a b/\u007f/\u001f', host: ' !#[]~{}' }), false],
  // The method, status and host fields are cached: a change and a change back must show in the line.
  ['another method, status and host', exchange({ req: { method: 'POST' }, status: 503, host: 'b.example' }), false],
  ['the first method, status and host again', exchange({}), false],
  ['a consumer a policy established', exchange({ consumer: 'partner "a"' }), false],
  ['an HTTP/2 request on the TLS listener', exchange({ http2: true, http2Socket: { destroyed: false, encrypted: true, getProtocol: () => 'TLSv1.3', alpnProtocol: 'h2' } }), false],
];

/** pino's own line for the same exchange, in createLogger's format (level label, ISO time, no base). */
function pinoLines(): { log: pino.Logger; lines: () => string[] } {
  const out: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { out.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
  const log = pino({ level: 'info', base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, sink);
  return { log, lines: () => out };
}

const withoutTime = (line: string) => line.replace(/"time":"[^"]+"/, '"time":"T"');

t.test('the access line Gantry writes itself is the line pino would write', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const fast = createAccessLog(createLogger('info', file).child({ worker: 2 }));
  const reference = pinoLines();
  const slow = createAccessLog(reference.log.child({ worker: 2 }));
  for (const [, ex, aborted] of CASES) { fast.request(ex, aborted); slow.request(ex, aborted); }
  let written: string[] = [];
  for (let i = 0; i < 100 && written.length < CASES.length; i++) {
    await new Promise((r) => setTimeout(r, 20));
    written = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  }
  CASES.forEach(([name], i) => {
    t.equal(withoutTime(written[i] ?? ''), withoutTime(reference.lines()[i] ?? '-'), name);
    t.match(written[i], /"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/, `${name}: ISO time`);
    t.doesNotThrow(() => JSON.parse(written[i] ?? ''), `${name}: valid JSON`);
  });
});

t.test('the ISO time made once per second is toISOString, across seconds, days and a clock stepped back', async (t) => {
  const iso = isoTimeOf();
  const times: number[] = [];
  const newYear = Date.UTC(2026, 11, 31, 23, 59, 59, 990);
  for (let ms = newYear; ms < newYear + 30; ms++) times.push(ms);   // into the next second, day and year
  times.push(newYear + 5, newYear - 86_400_000, Date.UTC(2026, 0, 1), 0, 999, 1000, 1_764_000_000_007);
  for (let i = 0; i < 2000; i++) times.push(Math.floor(Math.random() * 4_102_444_800_000));
  const wrong = times.filter((ms) => iso(ms) !== new Date(ms).toISOString());
  t.same(wrong.map((ms) => [ms, iso(ms), new Date(ms).toISOString()]), [], `${times.length} times`);
});

t.test('a duration in hundredths is written as String(h / 100) writes it', async (t) => {
  const hs = [0, 1, 5, 9, 10, 11, 50, 99, 100, 101, 105, 110, 190, 1000, 1001, 1010, 123_456, 2 ** 31, 2 ** 40 + 7];
  for (let i = 0; i < 5000; i++) hs.push(Math.floor(Math.random() * 10 ** (1 + (i % 9))));
  // As the access log gets them: durations in ms rounded to 0.01, times 100, rounded.
  for (let i = 0; i < 2000; i++) hs.push(Math.round(Math.round(Math.random() * 60_000 * 100) / 100 * 100));
  const wrong = hs.filter((h) => hundredthsText(h) !== String(h / 100));
  t.same(wrong.map((h) => [h, hundredthsText(h), String(h / 100)]), [], `${hs.length} values`);
});

t.test('the fields written without escaping never need it: request ids, methods, trace ids', async (t) => {
  const plain = (s: string) => JSON.stringify(s) === `"${s}"`;
  const hostile = ['a"b', 'a\\b', 'a\u0001b', 'caf\u00e9', 'x'.repeat(129), '', 'ok-id', 'a b', ['x', 'y'] as unknown as string];
  for (const sent of hostile) t.ok(plain(requestIdFrom(sent)), `request id from ${JSON.stringify(sent)}`);
  for (const sent of ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-"bad"', undefined]) {
    const traceId = applyTraceContext({ traceparent: sent }, { createTraceparent: true, sampleRatio: 1 });
    t.ok(plain(traceId) && /^[0-9a-f]{32}$/.test(traceId), `trace id from ${String(sent)}`);
  }
  // Node's parser accepts only known methods, all upper-case letters, hyphens and underscores.
  const { METHODS } = await import('node:http');
  t.ok(METHODS.every((m) => /^[A-Z_-]+$/.test(m)), 'every method Node parses');
});

t.test('no access line when the log level is above info', async (t) => {
  const reference = pinoLines();
  reference.log.level = 'warn';
  createAccessLog(reference.log).request(exchange({}), false);
  t.same(reference.lines(), []);
});

t.test('the lines of one turn reach the log stream as one write, in order; flush() hands them over at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = createLogger('info', join(dir, 'access.log'));
  const stream = (log as unknown as Record<symbol, { write(s: string): boolean }>)[pino.symbols.streamSym] as { write(s: string): boolean };
  const writes: string[] = [];
  stream.write = (s: string) => { writes.push(s); return true; };
  const access = createAccessLog(log);
  const parse = (chunk: string | undefined) => (chunk ?? '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { reqId: string; time: string });

  for (let i = 0; i < 3; i++) access.request(exchange({ requestId: `turn-${i}` }), false);
  t.same(writes, [], 'nothing is written during the turn');
  await new Promise((r) => setImmediate(r));
  t.equal(writes.length, 1, 'one write for the turn');
  t.same(parse(writes[0]).map((l) => l.reqId), ['turn-0', 'turn-1', 'turn-2'], 'its lines in order');

  await new Promise((r) => setTimeout(r, 5));
  access.request(exchange({ requestId: 'last' }), false);
  access.flush();   // what a shutdown does before pino's final flush
  t.equal(writes.length, 2, 'flush() writes without waiting for the turn to end');
  t.equal(parse(writes[1])[0]?.reqId, 'last');
  t.not(parse(writes[1])[0]?.time, parse(writes[0])[0]?.time, 'a later millisecond gets its own time');
  access.flush();
  await new Promise((r) => setImmediate(r));
  t.equal(writes.length, 2, 'nothing is written twice');
});

t.test('createLogger writes a regular file synchronously and a named pipe asynchronously', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const syncOf = (log: pino.Logger) => ((log as unknown as Record<symbol, { sync: boolean }>)[pino.symbols.streamSym] as { sync: boolean }).sync;
  t.equal(syncOf(createLogger('info', join(dir, 'file.log'))), true, 'a file');
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);   // so that opening it to write does not wait
  t.teardown(() => closeSync(reader));
  const piped = createLogger('info', fifo);
  t.equal(syncOf(piped), false, 'a named pipe given as a path');
  (piped as unknown as Record<symbol, { destroy(): void }>)[pino.symbols.streamSym]!.destroy();
});
