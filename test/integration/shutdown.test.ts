import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createGateway } from '../../gateway/create-gateway.js';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { waitFor } from '../helpers/capture-log.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const ECHO = fileURLToPath(new URL('../../examples/echo-server.js', import.meta.url));

function config(upstream: string, drainGraceMs: number): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
server: { drainGraceMs: ${drainGraceMs} }
services:
  svc: { discovery: { type: static, endpoints: ["${upstream}"] } }
routes:
  - { match: { path: / }, service: svc }
`;
}

function get(port: number, path: string): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    }).on('error', reject);
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

t.test('SIGTERM: readiness turns 503, new connections are refused, slow requests in flight finish, exit 0', async (t) => {
  const up = await startRecordingUpstream((req, res) => setTimeout(() => res.end(`slow ${req.url}`), 1500));
  const gw = await spawnGateway(config(up.url, 10_000));
  t.teardown(async () => { await gw.kill(); await up.close(); });

  const inFlight = [get(gw.port, '/a'), get(gw.port, '/b'), get(gw.port, '/c')];
  await waitFor(() => up.requests.length === 3, 10_000, 'the three requests at the upstream');
  gw.child.kill('SIGTERM');
  await gw.waitForLog((l) => l.event === 'draining');

  const ready = await fetch(`http://127.0.0.1:${gw.adminPort}/readyz`).then((r) => r.status).catch(() => 'closed');
  t.equal(ready, 503, 'readyz answers 503 while draining');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await canConnect(gw.port), false, 'new connections are refused');

  const results = await Promise.all(inFlight);
  t.same(results.map((r) => r.status), [200, 200, 200], 'every request in flight finished');
  t.same(results.map((r) => r.body), ['slow /a', 'slow /b', 'slow /c']);
  t.same(results.map((r) => r.connection), ['close', 'close', 'close'], 'with Connection: close');
  t.same(await gw.exited, { code: 0, signal: null });
  t.ok(gw.logs.some((l) => l.event === 'stopped' && l.forced === false));
  const stoppedAt = gw.logs.findIndex((l) => l.event === 'stopped');
  const access = gw.logs.flatMap((l, i) => (l.log === 'access' && i < stoppedAt ? [l.path] : []));
  t.same(access.sort(), ['/a', '/b', '/c'], 'their access lines were written before the exit');
});

t.test('SIGTERM past the drain grace closes what is left and exits 1', async (t) => {
  // Unref'd: the answer never comes in time, and its timer must not hold the test file's process open after.
  const up = await startRecordingUpstream((_req, res) => { setTimeout(() => res.end('too late'), 5000).unref(); });
  const gw = await spawnGateway(config(up.url, 300));
  t.teardown(async () => { await gw.kill(); await up.close(); });
  const stuck = get(gw.port, '/x').then(() => 'answered', () => 'cut');
  await waitFor(() => up.requests.length === 1, 10_000, 'the request at the upstream');
  const sent = Date.now();
  gw.child.kill('SIGTERM');
  t.equal(await stuck, 'cut');
  t.same(await gw.exited, { code: 1, signal: null });
  t.ok(Date.now() - sent < 3000, 'within the grace plus a little');
  t.ok(gw.logs.some((l) => l.event === 'drain-timeout'));
});

t.test('idle keep-alive connections are closed at once on SIGTERM', async (t) => {
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(config(up.url, 10_000));
  t.teardown(async () => { await gw.kill(); await up.close(); });
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  await new Promise<void>((resolve) => http.get({ host: '127.0.0.1', port: gw.port, path: '/', agent }, (r) => { r.resume(); r.on('end', resolve); }));
  const socket = Object.values(agent.freeSockets)[0]?.[0];
  t.ok(socket, 'the client holds an idle keep-alive socket');
  const closed = new Promise<void>((resolve) => socket?.once('close', () => resolve()));
  gw.child.kill('SIGTERM');
  await closed;
  t.same(await gw.exited, { code: 0, signal: null });
});

t.test('a start that fails stops what had started, in reverse: the scaler\'s instance is not left running', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-start-fails-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.teardown(() => new Promise((r) => taken.close(r)));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, `listen: 127.0.0.1:0
services:
  app:
    discovery: { type: scaler }
    scaling:
      scaler: { type: process, command: [node, ${JSON.stringify(ECHO)}], healthIntervalMs: 25, stopGraceMs: 2000, output: ignore }
      min: 1
routes:
  - { match: { path: / }, service: app }
`);
  const { log, lines } = captureLogger();
  // The serving config starts (its scaler runs an instance), then the admin listener cannot bind.
  await t.rejects(createGateway({ configFile: file, plugins: createBuiltinRegistry(), log, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: (taken.address() as net.AddressInfo).port } }), { code: 'EADDRINUSE' });
  const ready = lines.find((l) => l.event === 'instance-ready');
  t.ok(ready, 'the instance had started');
  const alive = () => { try { process.kill(ready?.pid as number, 0); return true; } catch { return false; } };
  await waitFor(() => !alive(), 5000, 'the instance to stop');
  t.notOk(alive(), 'the instance was stopped');
  t.notOk(lines.some((l) => l.event === 'started'), 'never announced as started');
});
