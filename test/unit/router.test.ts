import t from 'tap';
import type { RouteConfig } from '../../gateway/config/gateway-config.js';
import { Router } from '../../gateway/routing/router.js';

let index = 0;
function route(name: string, match: Partial<RouteConfig['match']>, extra: Partial<RouteConfig> = {}): RouteConfig {
  return {
    name, index: index++, service: name, stripPrefix: false, websocket: false, timeoutMs: 1000, tryTimeoutMs: 1000, maxBodyBytes: 1000, policies: [],
    match: { hosts: [], methods: [], headers: {}, ...match }, ...extra,
  };
}
function winner(router: Router, method: string, host: string, path: string, headers = {}): string {
  const m = router.match(method, host, path, headers);
  return m.kind === 'route' ? m.route.name : m.kind === 'method-not-allowed' ? `405:${m.allow.join(',')}` : '404';
}

t.test('a prefix matches whole segments only', async (t) => {
  const r = new Router([route('api', { path: '/api' })]);
  t.equal(winner(r, 'GET', 'h', '/api'), 'api');
  t.equal(winner(r, 'GET', 'h', '/api/'), 'api');
  t.equal(winner(r, 'GET', 'h', '/api/x/y'), 'api');
  t.equal(winner(r, 'GET', 'h', '/apiary'), '404');
  t.equal(winner(r, 'GET', 'h', '/'), '404');
});

t.test('the longest prefix wins, then regex beats prefix, then exact beats both', async (t) => {
  const r = new Router([
    route('root', { path: '/' }), route('api', { path: '/api' }), route('users', { path: '/api/users' }),
    route('user-id', { pathRegex: '^/api/users/[0-9]+$' }), route('me', { exactPath: '/api/users/me' }),
  ]);
  t.equal(winner(r, 'GET', 'h', '/x'), 'root');
  t.equal(winner(r, 'GET', 'h', '/api/other'), 'api');
  t.equal(winner(r, 'GET', 'h', '/api/users/abc'), 'users');
  t.equal(winner(r, 'GET', 'h', '/api/users/42'), 'user-id');
  t.equal(winner(r, 'GET', 'h', '/api/users/me'), 'me');
});

t.test('an exact host beats a wildcard, a longer wildcard beats a shorter one, and both beat no host', async (t) => {
  const r = new Router([
    route('any', { path: '/' }), route('wild', { hosts: ['*.example.com'], path: '/' }),
    route('wild-deep', { hosts: ['*.eu.example.com'], path: '/' }), route('exact', { hosts: ['api.example.com'], path: '/' }),
  ]);
  t.equal(winner(r, 'GET', 'api.example.com', '/'), 'exact');
  t.equal(winner(r, 'GET', 'www.example.com', '/'), 'wild');
  t.equal(winner(r, 'GET', 'a.eu.example.com', '/'), 'wild-deep');
  t.equal(winner(r, 'GET', 'example.com', '/'), 'any');
  t.equal(winner(r, 'GET', 'evilexample.com', '/'), 'any');
});

t.test('an unknown host never falls back to a host-specific route', async (t) => {
  const r = new Router([route('api', { hosts: ['api.example.com'], path: '/' })]);
  t.equal(winner(r, 'GET', 'evil.example', '/'), '404');
  t.equal(winner(r, 'GET', 'evilapi.example.com', '/'), '404');
});

t.test('a more specific host tier that fails on path falls through to the next tier', async (t) => {
  const r = new Router([route('exact', { hosts: ['a.test'], path: '/only' }), route('any', { path: '/' })]);
  t.equal(winner(r, 'GET', 'a.test', '/other'), 'any');
});

t.test('header conditions and methods order routes within one path; a method mismatch is a 405 with Allow', async (t) => {
  const r = new Router([
    route('plain', { path: '/x', methods: ['GET'] }),
    route('beta', { path: '/x', headers: { 'x-beta': '1' } }),
    route('writes', { path: '/x', methods: ['POST', 'PUT'] }),
  ]);
  t.equal(winner(r, 'GET', 'h', '/x'), 'plain');
  t.equal(winner(r, 'GET', 'h', '/x', { 'x-beta': '1' }), 'beta');
  t.equal(winner(r, 'DELETE', 'h', '/x', { 'x-beta': '1' }), 'beta');
  t.equal(winner(r, 'POST', 'h', '/x/y'), 'writes');
  t.equal(winner(r, 'DELETE', 'h', '/x'), '405:GET,POST,PUT');
});

t.test('equally specific routes are decided by file order', async (t) => {
  const r = new Router([route('first', { path: '/a', methods: ['GET'] }), route('second', { path: '/a', methods: ['GET', 'POST'] })]);
  t.equal(winner(r, 'GET', 'h', '/a'), 'first');
});

t.test('a table of 10 000 host routes is still matched by map lookups', async (t) => {
  const routes = Array.from({ length: 10_000 }, (_, i) => route(`r${i}`, { hosts: [`h${i}.example.com`], path: `/p${i % 10}` }));
  const r = new Router(routes);
  t.equal(winner(r, 'GET', 'h9999.example.com', '/p9/x'), 'r9999');
  t.equal(winner(r, 'GET', 'h9999.example.com', '/p8'), '404');
});

t.test('Router.build in slices gives the same table as the constructor, pausing when due', async (t) => {
  // Ranks that only the seal's sort puts right: file order says "plain" first, specificity says headers, then methods.
  const routes = [
    route('plain', { path: '/api' }), route('get-only', { path: '/api', methods: ['GET'] }),
    route('tenant', { path: '/api', headers: { 'x-tenant': 'a' } }), route('exact', { exactPath: '/api/x' }),
    route('wild', { hosts: ['*.example.com'], path: '/' }), route('host', { hosts: ['a.example.com'], path: '/api' }),
  ];
  let pauses = 0;
  const built = await Router.build(routes, { due: () => true, pause: async () => { pauses++; } });
  const sync = new Router(routes);
  t.equal(built.size, 6);
  t.ok(pauses >= routes.length, 'a pause after each route when the clock is always due');
  for (const [method, host, path, headers] of [
    ['GET', 'h', '/api/y', {}], ['POST', 'h', '/api/y', {}], ['POST', 'h', '/api/y', { 'x-tenant': 'a' }], ['GET', 'h', '/api/x', {}],
    ['GET', 'a.example.com', '/api', {}], ['GET', 'b.example.com', '/api', {}],
  ] as const) {
    t.equal(winner(built, method, host, path, headers), winner(sync, method, host, path, headers), `${method} ${host}${path}`);
  }
  t.equal(winner(built, 'POST', 'h', '/api/y', { 'x-tenant': 'a' }), 'tenant', 'sealed: header routes first');
  t.equal(winner(built, 'GET', 'h', '/api/y'), 'get-only', 'sealed: method routes before the plain one');
});
