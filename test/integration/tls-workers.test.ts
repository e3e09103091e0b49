import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { createCertificateAuthority, type CertificateAuthority } from '../helpers/certificate-authority.js';
import { repeatUntil, spawnGateway, workersReady } from '../helpers/gateway-process.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { httpsGet } from '../helpers/tls-clients.js';

let ca: CertificateAuthority;
t.before(async () => { ca = await createCertificateAuthority(); });
t.teardown(() => ca.remove());

t.test('--workers: every worker serves HTTPS on one port, resumes the others\' sessions, and picks up a rotated certificate', async (t) => {
  // A Kubernetes-style secret volume: tls.crt and tls.key through the `..data` symlink.
  const volume = join(ca.dir, 'workers-volume');
  await mkdir(volume, { recursive: true });
  let version = 0;
  const swapIn = async (name: string) => {
    const issued = await ca.issue(name, ['workers.test'], {}, ca.dir);
    const dir = `..v${++version}`;
    await mkdir(join(volume, dir));
    await writeFile(join(volume, dir, 'tls.crt'), await readFile(issued.cert));
    await writeFile(join(volume, dir, 'tls.key'), await readFile(issued.key));
    await symlink(dir, join(volume, '..data_tmp'));
    await rename(join(volume, '..data_tmp'), join(volume, '..data'));
    return new X509Certificate(await readFile(issued.cert)).fingerprint256;
  };
  const first = await swapIn('workers-1');
  await symlink('..data/tls.crt', join(volume, 'tls.crt'));
  await symlink('..data/tls.key', join(volume, 'tls.key'));

  const up = await startRecordingUpstream();
  const gw = await spawnGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${join(volume, 'tls.crt')}, key: ${join(volume, 'tls.key')} }]
services:
  svc: { discovery: { type: static, endpoints: ["${up.url}"] } }
routes:
  - { match: { path: / }, service: svc }
`, ['--workers', '2']);
  t.teardown(async () => { await gw.kill(); await up.close(); });
  await workersReady(gw, 2);
  const started = gw.logs.filter((l) => l.event === 'started');
  const ports = new Set(started.map((l) => (l.tls as { port: number }).port));
  t.equal(ports.size, 1, 'both workers listen on the one TLS port the primary picked for port 0');
  const port = [...ports][0] as number;
  // Each its own listening socket (SO_REUSEPORT, as the plain listener), not one shared through the primary.
  const { stdout } = await promisify(execFile)('ss', ['-Hltn', `sport = :${port}`]);
  t.equal(stdout.trim().split('\n').filter(Boolean).length, 2, 'two listening sockets on the TLS port');

  // Every request on a new connection, resuming the first one's session: the kernel spreads them over both workers.
  const firstAnswer = await httpsGet(port, 'workers.test', '/first', ca.caPem);
  t.equal(firstAnswer.fingerprint, first);
  const workersOf = () => new Set(gw.logs.filter((l) => l.log === 'access' && l.path === '/resumed').map((l) => l.worker));
  const notReused: number[] = [];
  let n = 0;
  await repeatUntil(async () => {
    const answer = await httpsGet(port, 'workers.test', '/resumed', ca.caPem, {}, firstAnswer.session);
    n++;
    if (!answer.reused) notReused.push(n);
  }, () => workersOf().size === 2, 60);
  t.same(notReused, [], `every one of ${n} connections, on either worker, resumed the session (shared ticket keys)`);
  t.ok(gw.logs.some((l) => l.log === 'access' && l.tls !== undefined), 'access lines carry the TLS version');

  // A rotation on disk: each worker watches the directory and loads the new certificate itself.
  const from = gw.logs.length;
  const second = await swapIn('workers-2');
  await waitFor(() => new Set(gw.logs.slice(from).filter((l) => l.event === 'tls-certificates-loaded').map((l) => l.worker)).size === 2, 2000, 'both workers loaded it');
  const after = new Set<string>();
  for (let i = 0; i < 10; i++) after.add((await httpsGet(port, 'workers.test', '/after', ca.caPem)).fingerprint);
  t.same([...after], [second], 'every new connection gets the new certificate');
});
