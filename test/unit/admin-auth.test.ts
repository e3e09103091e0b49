import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { bearerMatches, resolveAdminToken } from '../../gateway/admin/admin-auth.js';
import { isLoopbackHost } from '../../gateway/config/check-admin-auth.js';
import { parseRoutes } from '../../gateway/config/load-routes-file.js';
import { createBuiltinRegistry } from '../../plugins/index.js';

const plugins = createBuiltinRegistry();
const TAIL = `services:
  echo: { discovery: { type: static, endpoints: ["http://127.0.0.1:3001"] } }
routes:
  - { match: { path: / }, service: echo }
`;

const problems = configProblems;

t.test('an admin listener beyond loopback without adminAuth is a config error at its line', async (t) => {
  t.same(problems(`admin: 0.0.0.0:9901\n${TAIL}`), [
    'routes.yaml:1:8: admin: the admin listener on 0.0.0.0 is reachable beyond this host: set adminAuth.tokenFile or adminAuth.tokenEnv (a bearer token), or bind it to 127.0.0.1',
  ]);
  t.equal(problems(`admin: "[::]:9901"\n${TAIL}`).length, 1, ':: too');
  t.same(problems(`admin: 127.0.0.1:9901\n${TAIL}`), [], 'loopback needs no token');
  t.same(problems(`admin: "[::1]:9901"\n${TAIL}`), []);
  t.same(problems(`admin: null\n${TAIL}`), []);
  t.same(problems(`admin: 0.0.0.0:9901\nadminAuth: { tokenEnv: GANTRY_ADMIN_TOKEN }\n${TAIL}`), []);
});

t.test('adminAuth takes exactly one source, and a valid variable name', async (t) => {
  t.same(problems(`adminAuth: { tokenEnv: A, tokenFile: /x }\n${TAIL}`), ['routes.yaml:1:12: adminAuth: set exactly one of tokenFile and tokenEnv']);
  t.same(problems(`adminAuth: {}\n${TAIL}`), ['routes.yaml:1:12: adminAuth: set exactly one of tokenFile and tokenEnv']);
  t.match(problems(`adminAuth: { tokenEnv: "1-BAD" }\n${TAIL}`), [/routes\.yaml:1:24: adminAuth\.tokenEnv: must match \^\[A-Za-z_\]/]);
  t.same(problems(`adminAuth: { token: hunter2 }\n${TAIL}`), ['routes.yaml:1:14: adminAuth.token: unknown field "token"'], 'a token inline in the file is refused');
});

t.test('loopback hosts', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) t.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'gantry.internal', '::ffff:10.0.0.1']) t.notOk(isLoopbackHost(h), h);
});

t.test('the token comes from a file (relative to the routes file) or the environment, and must be long enough', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-token-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const base = parseRoutes(`admin: 0.0.0.0:9901\nadminAuth: { tokenFile: secrets/admin-token }\n${TAIL}`, join(dir, 'routes.yaml'), plugins);
  await t.rejects(resolveAdminToken(base), { code: 'GW_ERR_CONFIG_INVALID', message: /adminAuth\.tokenFile: cannot read the admin token: ENOENT/ });

  await mkdir(join(dir, 'secrets'));
  await writeFile(join(dir, 'secrets/admin-token'), 's3cret-token-0123456789\n', { mode: 0o600 });
  await chmod(join(dir, 'secrets/admin-token'), 0o600);
  t.match(await resolveAdminToken(base), { token: 's3cret-token-0123456789', source: `file ${join(dir, 'secrets/admin-token')}`, warning: undefined }, 'the trailing newline is dropped');
  await chmod(join(dir, 'secrets/admin-token'), 0o644);
  t.match(await resolveAdminToken(base), { warning: /readable by every user/ });
  await writeFile(join(dir, 'secrets/admin-token'), 'short\n');
  await t.rejects(resolveAdminToken(base), { message: /shorter than 16 characters/ });
  await writeFile(join(dir, 'secrets/admin-token'), 'has a space in the token\n');
  await t.rejects(resolveAdminToken(base), { message: /whitespace or control characters/ });

  const env = parseRoutes(`adminAuth: { tokenEnv: GANTRY_TEST_TOKEN }\n${TAIL}`, 'routes.yaml', plugins);
  await t.rejects(resolveAdminToken(env, {}), { message: /adminAuth\.tokenEnv: the environment variable GANTRY_TEST_TOKEN is not set or empty/ });
  t.match(await resolveAdminToken(env, { GANTRY_TEST_TOKEN: 'env-token-0123456789abcdef' }), { token: 'env-token-0123456789abcdef', source: 'environment variable GANTRY_TEST_TOKEN' });
  t.equal(await resolveAdminToken(parseRoutes(TAIL, 'routes.yaml', plugins)), null, 'no adminAuth, no token');
});

t.test('bearer check', async (t) => {
  const token = 's3cret-token-0123456789';
  t.ok(bearerMatches(`Bearer ${token}`, token));
  t.ok(bearerMatches(`bearer  ${token} `, token), 'scheme is case-insensitive, spaces tolerated');
  t.notOk(bearerMatches(undefined, token));
  t.notOk(bearerMatches(token, token), 'no scheme');
  t.notOk(bearerMatches(`Basic ${token}`, token));
  t.notOk(bearerMatches(`Bearer ${token}x`, token));
  t.notOk(bearerMatches(`Bearer ${token.slice(0, -1)}`, token));
  t.notOk(bearerMatches('Bearer ', token));
});
