import { createRequire } from 'node:module';
import util from 'node:util';
import t from 'tap';

// Stands in for Node 22+'s deprecated util._extend (or a Node without it): http-proxy must never call Node's.
// Set before http-proxy is loaded: this file runs in its own process, and nothing has loaded it yet.
const nodeUtil = util as unknown as { _extend?: (target: object, source: unknown) => object };
const nodes = nodeUtil._extend;
let called = 0;
const stub = (): never => { called++; throw new Error('Node\'s util._extend was called'); };
nodeUtil._extend = stub;
const { httpProxy } = await import('../../gateway/proxy/http-proxy-module.js');
const swapped = nodeUtil._extend;
nodeUtil._extend = nodes;

t.test('http-proxy is loaded with its own extend: the WebSocket path never calls Node\'s util._extend (DEP0060 on Node 22+)', async (t) => {
  t.type(httpProxy.createProxyServer, 'function');
  t.equal(swapped, stub, 'what util._extend was before the load is back afterwards');
  // The function every ws() call runs first (http-proxy's setupOutgoing), from the module instance just loaded.
  const common = createRequire(import.meta.url)('http-proxy/lib/http-proxy/common.js') as {
    setupOutgoing(outgoing: Record<string, unknown>, options: object, req: object): Record<string, unknown>;
  };
  const outgoing: Record<string, unknown> = {};
  common.setupOutgoing(outgoing, { target: new URL('http://127.0.0.1:9'), headers: { 'x-added': '2' } },
    { headers: { 'x-client': '1' }, url: '/ws', method: 'GET' });
  t.match(outgoing.headers, { 'x-client': '1', 'x-added': '2' }, 'the request headers and the extra ones, copied');
  t.equal(called, 0, 'Node\'s util._extend was not called');
});
