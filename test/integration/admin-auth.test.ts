import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createGateway } from '../../gateway/create-gateway.js';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { routesYaml, startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const TOKEN = 'admin-token-0123456789abcdef';
const NEXT = 'rotated-token-fedcba9876543210';

/** A raw request, to set Host and Origin freely (fetch forbids both). */
function request(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function withToken(t: Test) {
  const up = await startRecordingUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'gantry-admin-auth-'));
  const tokenFile = join(dir, 'admin-token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const gw = await startGateway(routesYaml([up.url]).replace('services:', `adminAuth: { tokenFile: ${tokenFile} }\nservices:`));
  t.teardown(async () => { await gw.close(); await up.close(); await rm(dir, { recursive: true, force: true }); });
  const port = gw.gateway.adminAddress()!.port;
  return { gw, port, tokenFile };
}

t.test('with adminAuth, everything but /healthz and /readyz needs the bearer token', async (t) => {
  const { gw, port } = await withToken(t);
  for (const path of ['/metrics', '/admin/config', '/admin/routes', '/admin/services', '/admin/scaling', '/admin/stats']) {
    const none = await request(port, path);
    t.equal(none.status, 401, `${path} without a token`);
    t.equal(none.headers['www-authenticate'], 'Bearer realm="gantry-admin"');
    t.match(JSON.parse(none.body), { error: 'unauthorized' });
    t.equal((await request(port, path, { authorization: 'Bearer wrong-token-0123456789' })).status, 401, `${path} with a wrong token`);
    t.equal((await request(port, path, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` })).status, 401, `${path} with Basic`);
    t.equal((await request(port, path, { authorization: `Bearer ${TOKEN}` })).status, 200, `${path} with the token`);
  }
  t.equal((await request(port, '/healthz')).status, 200, 'probes need no token');
  t.equal((await request(port, '/readyz')).status, 200);
  const page = await request(port, '/dashboard');
  t.equal(page.status, 200, 'the page itself holds no data; its API calls need the token');
  t.match(page.body, /<script id="initial-state" type="application\/json"><\/script>/, 'no first state in the page: it is open, its data is not');

  const refused = await request(port, '/admin/reload', {}, 'POST');
  t.equal(refused.status, 401);
  t.notOk(gw.logs.some((l) => l.event === 'admin-reload'), 'no admin action without a token');
  t.equal((await request(port, '/admin/reload', { authorization: `Bearer ${TOKEN}` }, 'POST')).status, 200);
  t.equal((await request(port, '/admin/config', { authorization: `Bearer ${TOKEN}`, host: 'gantry.example.com:9901' })).status, 200, 'with a token, any Host');
});

t.test('a reload re-reads the token file: rotation needs no restart; an unreadable new token keeps the old', async (t) => {
  const { gw, port, tokenFile } = await withToken(t);
  await writeFile(tokenFile, `${NEXT}\n`);
  t.equal((await request(port, '/admin/reload', { authorization: `Bearer ${TOKEN}` }, 'POST')).status, 200, 'the reload itself is authorised with the old token');
  t.equal((await request(port, '/admin/config', { authorization: `Bearer ${TOKEN}` })).status, 401, 'the old token no longer works');
  t.equal((await request(port, '/admin/config', { authorization: `Bearer ${NEXT}` })).status, 200, 'the new one does');
  t.ok(gw.logs.some((l) => l.event === 'admin-token-changed'));

  await writeFile(tokenFile, 'short\n');
  await gw.gateway.reload();
  t.ok(gw.logs.some((l) => l.event === 'admin-token-kept'), 'an invalid new token is logged');
  t.equal((await request(port, '/admin/config', { authorization: `Bearer ${NEXT}` })).status, 200, 'and the previous token stays');
});

t.test('without adminAuth (loopback only): DNS-rebinding and cross-site requests are refused', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await startGateway(routesYaml([up.url]));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const port = gw.gateway.adminAddress()!.port;
  t.equal((await request(port, '/admin/config', { host: `127.0.0.1:${port}` })).status, 200);
  t.equal((await request(port, '/admin/config', { host: `localhost:${port}` })).status, 200);
  t.equal((await request(port, '/metrics', { host: `[::1]:${port}` })).status, 200);
  const rebound = await request(port, '/admin/config', { host: `attacker.example:${port}` });
  t.equal(rebound.status, 403, 'a page on attacker.example resolving to 127.0.0.1 cannot read the admin API');
  t.equal((await request(port, '/healthz', { host: 'attacker.example' })).status, 200, 'probes still answer');
  const csrf = await request(port, '/admin/reload', { host: `127.0.0.1:${port}`, origin: 'http://attacker.example' }, 'POST');
  t.equal(csrf.status, 403, 'a cross-site form post cannot reload');
  t.equal((await request(port, '/admin/reload', { host: `127.0.0.1:${port}`, 'sec-fetch-site': 'cross-site' }, 'POST')).status, 403);
  t.equal((await request(port, '/admin/reload', { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` }, 'POST')).status, 200, 'the same origin may');
  t.notOk(gw.logs.filter((l) => l.event === 'admin-reload').length > 1, 'only the same-origin reload ran');
});

t.test('an admin listener beyond loopback without a token never starts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-admin-auth-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, routesYaml(['http://127.0.0.1:1']));
  // The file says loopback; the override binds beyond it (as a wrong deployment could): refused before any bind.
  await t.rejects(createGateway({ configFile: file, plugins: createBuiltinRegistry(), listen: { host: '127.0.0.1', port: 0 }, admin: { host: '0.0.0.0', port: 0 } }), {
    code: 'GW_ERR_CONFIG_INVALID', message: /admin: the admin listener on 0\.0\.0\.0 needs adminAuth/,
  });
  await writeFile(file, routesYaml(['http://127.0.0.1:1']).replace('services:', 'adminAuth: { tokenEnv: GANTRY_TEST_UNSET_TOKEN }\nservices:'));
  await t.rejects(createGateway({ configFile: file, plugins: createBuiltinRegistry(), listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } }), {
    message: /adminAuth\.tokenEnv: the environment variable GANTRY_TEST_UNSET_TOKEN is not set/,
  });
});
