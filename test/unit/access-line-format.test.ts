import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { createAccessLog } from '../../gateway/proxy/access-log.js';
import { compileAccessFormat } from '../../gateway/proxy/access-line-format.js';
import type { Exchange } from '../../gateway/proxy/exchange.js';
import { configProblems } from '../helpers/config-problems.js';

/** A finished exchange as the access formats read it. */
function exchange(over: Partial<Record<string, unknown>> = {}, headers: Record<string, string> = {}): Exchange {
  return {
    requestId: 'r-1', host: 'api.example', path: '/a/b', search: '?page=2', route: { name: 'api', service: 'svc' },
    req: { method: 'GET', url: '/x', httpVersion: '1.1', headers: { 'user-agent': 'curl/8.5.0', ...headers }, socket: { remoteAddress: '192.0.2.7' } },
    endpoint: { address: 'http://127.0.0.1:8080' }, status: 200, durationHundredths: () => 184, bytes: 312, attempts: 1,
    errorCode: undefined, budgetExhausted: false, traceId: '0af7651916cd43dd8448eb211c80319c', consumer: '', http2: false,
    ...over,
  } as unknown as Exchange;
}

const AT = Date.UTC(2025, 10, 25, 18, 57, 1, 123);

t.test('combined: the Apache/nginx line, then the duration, the request id and the trace id', async (t) => {
  const line = compileAccessFormat('combined');
  t.equal(line(exchange(), false, AT),
    '192.0.2.7 - - [25/Nov/2025:18:57:01 +0000] "GET /a/b?page=2 HTTP/1.1" 200 312 "-" "curl/8.5.0" 1.84 r-1 0af7651916cd43dd8448eb211c80319c');
  t.equal(line(exchange({ traceId: '', consumer: 'partner-a', status: 404, route: undefined, path: '', req: { method: 'POST', url: '/raw target', httpVersion: '1.0', headers: { referer: 'https://r.example/' }, socket: {} } }), false, AT),
    '- - partner-a [25/Nov/2025:18:57:01 +0000] "POST /raw target HTTP/1.0" 404 312 "https://r.example/" "-" 1.84 r-1 -',
    'a field without a value is `-`; a request never routed shows its target as received');
  t.match(line(exchange({ http2: true }), false, AT), /"GET \/a\/b\?page=2 HTTP\/2\.0"/);
});

t.test('a template of named fields; what a client sends cannot break the line or a quoted field', async (t) => {
  const line = compileAccessFormat('{time} {method} {target} {status} {durationMs}ms trace={traceId} route={route} ua="{userAgent}" {aborted}');
  t.equal(line(exchange(), false, AT), '2025-11-25T18:57:01.123Z GET /a/b?page=2 200 1.84ms trace=0af7651916cd43dd8448eb211c80319c route=api ua="curl/8.5.0" -');
  t.equal(line(exchange({}, { 'user-agent': 'evil"\n200 caf\u00e9\\' }), true, AT),
    '2025-11-25T18:57:01.123Z GET /a/b?page=2 200 1.84ms trace=0af7651916cd43dd8448eb211c80319c route=api ua="evil\\x22\\x0A200 caf\\xC3\\xA9\\x5C" aborted');
});

t.test('createAccessLog writes text lines, batched per turn, to the log\'s destination', async (t) => {
  const out: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { out.push(chunk.toString()); cb(); } });
  const access = createAccessLog(pino({ level: 'info', base: undefined }, sink), '{reqId} {status} {traceId}');
  access.request(exchange({ requestId: 'a' }), false);
  access.request(exchange({ requestId: 'b', traceId: '' }), false);
  await new Promise((r) => setImmediate(r));
  t.same(out, ['a 200 0af7651916cd43dd8448eb211c80319c\nb 200 -\n']);
});

t.test('log.accessFormat: json, combined or a template of known fields; an unknown field is a config error', async (t) => {
  const yaml = (format: string) => `listen: 127.0.0.1:0\nadmin: null\nlog: { accessFormat: ${JSON.stringify(format)} }\nservices:\n  s:\n    discovery: { type: static, endpoints: ["http://127.0.0.1:1"] }\nroutes:\n  - { match: { path: / }, service: s }\n`;
  t.same(configProblems(yaml('json')), []);
  t.same(configProblems(yaml('combined')), []);
  t.same(configProblems(yaml('{time} {status} {traceId}')), []);
  const [problem, ...rest] = configProblems(yaml('{time} {stauts} {trace}'));
  t.same(rest, []);
  t.match(problem, /^routes\.yaml:3:\d+: log\.accessFormat: unknown fields \{stauts\}, \{trace\}; the fields are time, /);
  t.match(configProblems(yaml('apache')), [/log\.accessFormat: is neither json, combined nor a template/]);
});
