import t from 'tap';
import {
  applyTraceContext, createTraceparent, formatTraceparent, isValidTracestate, parseTraceparent,
} from '../../gateway/proxy/trace-context.js';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const ON = { createTraceparent: true, sampleRatio: 1 };
const OFF = { createTraceparent: false, sampleRatio: 1 };

t.test('parses a valid version-00 traceparent', async (t) => {
  t.same(parseTraceparent(VALID), { version: '00', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', flags: '01' });
});

t.test('refuses malformed traceparents (W3C §3.2)', async (t) => {
  const bad: [string, string][] = [
    ['upper-case hex', VALID.toUpperCase()],
    ['version ff', `ff${VALID.slice(2)}`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['all-zero parent id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['short trace id', '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01'],
    ['non-hex flags', `${VALID.slice(0, 53)}0g`],
    ['version 00 with extra fields', `${VALID}-extra`],
    ['wrong separator', VALID.replace(/-/g, '_')],
    ['two headers joined by Node', `${VALID}, ${VALID}`],
    ['empty', ''],
  ];
  for (const [why, value] of bad) t.equal(parseTraceparent(value), null, why);
  t.equal(parseTraceparent(undefined), null);
  t.equal(parseTraceparent([VALID, VALID]), null, 'an array (repeated header) is invalid');
});

t.test('accepts a future version with more fields, and keeps it as sent', async (t) => {
  const future = `cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-whatever`;
  t.match(parseTraceparent(future), { version: 'cc', flags: '09' });
  t.equal(parseTraceparent(`cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09x`), null, 'the flags must end the value or precede a dash');
  const headers: Record<string, string> = { traceparent: future };
  t.equal(applyTraceContext(headers, ON), '4bf92f3577b34da6a3ce929d0e0e4736');
  t.equal(headers.traceparent, future);
});

t.test('tracestate: list members, keys and values per §3.3', async (t) => {
  t.ok(isValidTracestate('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'));
  t.ok(isValidTracestate('rojo=1 , ,congo=2'), 'optional whitespace and empty members');
  t.ok(isValidTracestate('tenant1@vendor=x'), 'multi-tenant key');
  t.notOk(isValidTracestate('Rojo=1'), 'upper-case key');
  t.notOk(isValidTracestate('rojo'), 'no value');
  t.notOk(isValidTracestate('rojo=a,rojo=b'), 'duplicate key');
  t.notOk(isValidTracestate('rojo=a=b'), '= in the value');
  t.notOk(isValidTracestate(`rojo=${'x'.repeat(257)}`), 'value longer than 256');
  t.notOk(isValidTracestate(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')), 'more than 32 members');
});

t.test('passes a valid traceparent and tracestate on unchanged', async (t) => {
  const headers: Record<string, string> = { traceparent: VALID, tracestate: 'rojo=00f067aa0ba902b7' };
  t.equal(applyTraceContext(headers, ON), '4bf92f3577b34da6a3ce929d0e0e4736');
  t.same(headers, { traceparent: VALID, tracestate: 'rojo=00f067aa0ba902b7' });
});

t.test('drops an invalid tracestate but keeps the traceparent', async (t) => {
  const headers: Record<string, string> = { traceparent: VALID, tracestate: 'BAD KEY=1' };
  applyTraceContext(headers, ON);
  t.same(headers, { traceparent: VALID });
});

t.test('replaces an invalid traceparent, and drops the tracestate that came with it', async (t) => {
  const headers: Record<string, string> = { traceparent: 'garbage', tracestate: 'rojo=1' };
  const traceId = applyTraceContext(headers, ON);
  t.match(headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.equal(headers.traceparent?.slice(3, 35), traceId);
  t.equal(headers.tracestate, undefined);
});

t.test('creates one when absent, or leaves the request without one when switched off', async (t) => {
  const created: Record<string, string> = {};
  const id = applyTraceContext(created, ON);
  t.match(id, /^[0-9a-f]{32}$/);
  t.ok(parseTraceparent(created.traceparent), 'the created traceparent is valid');

  const off: Record<string, string> = { traceparent: 'garbage', tracestate: 'a=1' };
  t.equal(applyTraceContext(off, OFF), '');
  t.same(off, {}, 'an invalid one is still not passed on');
  const kept: Record<string, string> = { traceparent: VALID };
  t.equal(applyTraceContext(kept, OFF), '4bf92f3577b34da6a3ce929d0e0e4736', 'a valid one is passed on even when creating is off');
});

t.test('sampleRatio decides the sampled flag of created traceparents', async (t) => {
  const flag = (ratio: number, r: number) => {
    const h: Record<string, string> = {};
    applyTraceContext(h, { createTraceparent: true, sampleRatio: ratio }, () => r);
    return h.traceparent?.slice(53);
  };
  t.equal(flag(0, 0), '00');
  t.equal(flag(0.25, 0.1), '01');
  t.equal(flag(0.25, 0.3), '00');
  t.equal(flag(1, 0.999), '01');
});

t.test('created ids are unique and well formed across many pool refills', async (t) => {
  const seen = new Set<string>();
  const invalid: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const tp = createTraceparent(true);
    if (!parseTraceparent(formatTraceparent(tp))) invalid.push(formatTraceparent(tp));
    seen.add(tp.traceId);
  }
  t.same(invalid, [], 'every created traceparent parses');
  t.equal(seen.size, 2000, 'no trace id repeats');
});
