import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { parseRoutes } from '../../gateway/config/load-routes-file.js';
import { createBuiltinRegistry } from '../../plugins/index.js';

const plugins = createBuiltinRegistry();

const problems = configProblems;

const GOOD = `services:
  echo:
    discovery: { type: static, endpoints: ["http://127.0.0.1:3001", { url: "http://127.0.0.1:3002", weight: 2 }] }
routes:
  - match: { host: API.Example.com, path: /echo, methods: [GET, POST] }
    service: echo
    stripPrefix: true
`;

t.test('a valid file gets its defaults, lower-cased hosts, and is frozen', async (t) => {
  const c = parseRoutes(GOOD, 'routes.yaml', plugins);
  t.same(c.listen, { host: '0.0.0.0', port: 8080 });
  t.same(c.admin, { host: '127.0.0.1', port: 9901 });
  t.equal(c.server.maxHeaders, 100);
  t.equal(c.services.get('echo')?.balancer, 'round-robin');
  t.same(c.routes[0]?.match.hosts, ['api.example.com']);
  t.equal(c.routes[0]?.name, 'route-0');
  t.equal(c.routes[0]?.timeoutMs, 15000);
  t.ok(Object.isFrozen(c.routes[0]?.match));
  t.match(c.hash, /^[0-9a-f]{64}$/);
});

t.test('the per-try timeout: a third of the route deadline with retries on, all of it with retries off; a set value wins', async (t) => {
  const endpoints = 'discovery: { type: static, endpoints: ["http://127.0.0.1:3001"] }';
  const c = parseRoutes(`services:
  plain: { ${endpoints} }
  noretry: { ${endpoints}, retry: { attempts: 0 } }
  set: { ${endpoints}, tryTimeoutMs: 12000 }
routes:
  - { name: plain, match: { path: /plain }, service: plain }
  - { name: long, match: { path: /long }, service: plain, timeoutMs: 60000 }
  - { name: noretry, match: { path: /noretry }, service: noretry }
  - { name: set, match: { path: /set }, service: set }
  - { name: set-short, match: { path: /set-short }, service: set, timeoutMs: 3000 }
`, 'routes.yaml', plugins);
  t.same(Object.fromEntries(c.routes.map((r) => [r.name, r.tryTimeoutMs])), { plain: 5000, long: 20000, noretry: 15000, set: 12000, 'set-short': 12000 });
  t.equal(c.services.get('plain')?.tryTimeoutMs, null);
  t.equal(c.services.get('set')?.tryTimeoutMs, 12000);
});

t.test('a YAML syntax error is reported with file:line:col', async (t) => {
  const found = problems('services:\n  echo: {\nroutes: []\n');
  t.ok(found.length >= 1);
  t.match(found[0], /^routes\.yaml:\d+:\d+: /);
});

t.test('duplicate keys are refused with their position', async (t) => {
  t.match(problems(`${GOOD}services: {}\n`)[0], /^routes\.yaml:8:1: .*unique/);
});

t.test('every schema problem is listed at once, each at the line and column of the value or key', async (t) => {
  const yaml = `listen: localhost
services:
  echo:
    discovery: { type: static, endpoints: ["http://127.0.0.1:3001"] }
    balancer: fastest
routes:
  - match: { path: api }
    service: echo
    colour: blue
`;
  t.same(problems(yaml), [
    'routes.yaml:1:9: listen: must be host:port, e.g. 0.0.0.0:8080 or [::1]:8080',
    'routes.yaml:5:15: services.echo.balancer: must be one of: round-robin, weighted-round-robin, random, least-request, p2c, consistent-hash',
    'routes.yaml:7:20: routes[0].match.path: must start with "/"',
    'routes.yaml:9:5: routes[0].colour: unknown field "colour"',
  ]);
});

t.test('semantic problems: unknown service, bad regex, duplicate routes, rewrite without prefix, plugin options', async (t) => {
  const yaml = `services:
  echo:
    discovery: { type: static, endpoints: ["ftp://x:1", "http://127.0.0.1:1", "http://127.0.0.1:1"] }
  other:
    discovery: { type: zookeeper }
routes:
  - match: { path: /a }
    service: nope
  - match: { pathRegex: "([" }
    service: echo
  - match: { exactPath: /x }
    service: echo
    stripPrefix: true
  - match: { path: /a }
    service: echo
`;
  t.same(problems(yaml), [
    'routes.yaml:3:44: services.echo.discovery.endpoints[0]: invalid endpoint URL: unsupported scheme ftp: (http or https)',
    'routes.yaml:3:79: services.echo.discovery.endpoints[2]: duplicate endpoint http://127.0.0.1:1',
    'routes.yaml:5:24: services.other.discovery.type: unknown discovery type "zookeeper" (known: static, file, dns, etcd, consul, kubernetes)',
    'routes.yaml:8:14: routes[0].service: unknown service "nope" (defined: echo, other)',
    'routes.yaml:9:25: routes[1].match.pathRegex: invalid regular expression: Invalid regular expression: /([/: Unterminated character class',
    'routes.yaml:13:18: routes[2].stripPrefix: a prefix rewrite needs match.path',
    'routes.yaml:14:12: routes[3].match: same match as routes[0]: this route could never be chosen',
  ]);
});

t.test('a host that is not a host name or wildcard is refused, in a list too; a value of no allowed form is one line', async (t) => {
  t.same(problems(GOOD.replace('API.Example.com', '"a b"')), ['routes.yaml:5:20: routes[0].match.host: must be a host name or a *.suffix wildcard']);
  t.same(problems(GOOD.replace('API.Example.com', '[ok.test, "a/b"]')), ['routes.yaml:5:30: routes[0].match.host[1]: must be a host name or a *.suffix wildcard']);
  t.same(problems(GOOD.replace('API.Example.com', '5')), ['routes.yaml:5:20: routes[0].match.host: must be one of the allowed forms']);
});

t.test('a listen port out of range is refused', async (t) => {
  t.same(problems(`listen: 0.0.0.0:70000\n${GOOD}`), ['routes.yaml:1:9: listen: port 70000 is out of range 0-65535']);
});

t.test('the header deadline may not exceed the request deadline (Node would throw at start)', async (t) => {
  t.same(problems(`server: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 }\n${GOOD}`),
    ['routes.yaml:1:29: server.headersTimeoutMs: must not exceed server.requestTimeoutMs (1000)']);
});

t.test('the file must be a mapping', async (t) => {
  t.same(problems('- a\n- b\n'), ['routes.yaml:1:1: the file must be a mapping with services and routes']);
});

t.test('server timeouts stop at the longest a Node.js timer takes (a longer one would fire after 1 ms)', async (t) => {
  const found = problems(`server:\n  drainGraceMs: 2147483648\n  keepAliveTimeoutMs: 2147483647\n${GOOD}`);
  t.same(found, ['routes.yaml:2:17: server.drainGraceMs: must be <= 2147483647']);
});

t.test('warmTimeoutMs stops at 20 s, below the 30 s a cluster primary waits for a worker to prepare a reload', async (t) => {
  const warm = (ms: number) => problems(GOOD.replace('    discovery:', `    warmTimeoutMs: ${ms}\n    discovery:`));
  t.same(warm(20000), []);
  t.same(warm(20001), ['routes.yaml:3:20: services.echo.warmTimeoutMs: must be <= 20000']);
});
