import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { createCertificateAuthority } from '../helpers/certificate-authority.js';
import { configProblems } from '../helpers/config-problems.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

const routes = (tlsBlock: string) => `listen: 127.0.0.1:0
admin: null
${tlsBlock}services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
routes:
  - { match: { path: / }, service: svc }
`;

t.test('row 62: gantry validate refuses a bad tls.acme block, each problem at its file:line:col', async (t) => {
  const ca = await createCertificateAuthority();
  const dir = await mkdtemp(join(tmpdir(), 'gantry-acme-config-'));
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }); await ca.remove(); });
  const taken = await ca.issue('taken', ['taken.example.com'], {}, dir);
  await writeFile(join(dir, 'not-a-dir'), 'a file where storage should be\n');
  await writeFile(join(dir, 'garbage.pem'), 'not a certificate\n');
  const yaml = routes(`tls:
  listen: 127.0.0.1:0
  certificates: [{ cert: ${taken.cert}, key: ${taken.key} }]
  acme:
    directory: http://acme.example.com/directory
    domains:
      - api.example.com
      - "*.example.com"
      - API.example.com
      - taken.example.com
      - not_a_name
    storage: not-a-dir/acme
    caFile: garbage.pem
    retry: { initialMs: 5000, maxMs: 2000 }
`);
  const file = join(dir, 'routes.yaml');
  await writeFile(file, yaml);
  const lines = yaml.split('\n');
  const at = (text: string, path: string) => {
    const line = lines.findIndex((l) => l.includes(text));
    return `${file}:${line + 1}:${lines[line]!.indexOf(text) + 1}: ${path}: `;
  };
  const out = await run(process.execPath, [CLI, 'validate', '-c', file]).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
  t.equal(out.code, 1, 'refused');
  t.match(out.stderr, `${at('http://acme', 'tls.acme.directory')}"http://acme.example.com/directory" is not an https:// URL`);
  t.match(out.stderr, `${at('"*.example.com"', 'tls.acme.domains[1]')}*.example.com: a wildcard needs the DNS-01 challenge`);
  t.match(out.stderr, `${at('API.example.com', 'tls.acme.domains[2]')}api.example.com is also domains[0]`);
  t.match(out.stderr, `${at('taken.example.com', 'tls.acme.domains[3]')}taken.example.com is also a name of certificates[0]`);
  t.match(out.stderr, `${at('not_a_name', 'tls.acme.domains[4]')}"not_a_name" is not a DNS name`);
  t.match(out.stderr, `${at('not-a-dir/acme', 'tls.acme.storage')}cannot use ${join(dir, 'not-a-dir/acme')}`);
  t.match(out.stderr, `${at('garbage.pem', 'tls.acme.caFile')}${join(dir, 'garbage.pem')} is not a PEM certificate`);
  t.match(out.stderr, `${at('5000', 'tls.acme.retry.initialMs')}must not exceed retry.maxMs (2000)`);
  t.match(out.stderr, `${file}: 8 problems`);

  // Fixed, the same file passes, without creating the storage directory.
  await mkdir(join(dir, 'ok'));
  await writeFile(file, routes(`tls:
  listen: 127.0.0.1:0
  acme:
    directory: https://acme.example.com/directory
    domains: [api.example.com]
    storage: ok/acme
`));
  const ok = await run(process.execPath, [CLI, 'validate', '-c', file]);
  t.match(ok.stdout, ': ok (');
});

t.test('row 62: no domains; no certificate source', async (t) => {
  const block = (acme: string) => routes(`tls:\n  listen: 127.0.0.1:0\n${acme}`);
  t.same(configProblems(block('  acme: { directory: "https://ca.test/dir", domains: [] }\n')),
    ['routes.yaml:5:54: tls.acme.domains: must NOT have fewer than 1 items']);
  t.same(configProblems(block('  minVersion: TLSv1.3\n')),
    ['routes.yaml:4:3: tls: needs certificates, acme or both: a TLS listener without a certificate serves nobody']);
});

t.test('row 62: a storage directory this user cannot write is refused (validate run as nobody)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-acme-storage-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Root writes anywhere, whatever the mode: the check is made as an unprivileged user, for whom mode 0555 holds.
  await mkdir(join(dir, 'readonly'), { mode: 0o555 });
  await chmod(dir, 0o755);
  await chmod(join(dir, 'readonly'), 0o555);
  const yaml = routes('tls:\n  listen: 127.0.0.1:0\n  acme: { directory: "https://ca.test/dir", domains: [a.test], storage: readonly/acme }\n');
  const file = join(dir, 'routes.yaml');
  await writeFile(file, yaml, { mode: 0o644 });
  // Without tap's coverage hooks, which would write their records where nobody may not.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('_TAPJS')));
  const asNobody = { uid: 65534, gid: 65534, env };
  // Node and this checkout must be open to nobody (CI keeps its runtimes under /var/cache for that reason).
  const reachable = await run(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(CLI)})`], asNobody).then(() => true, () => false);
  if (!reachable) return t.plan(0, `${process.execPath} or ${CLI} cannot be read by user nobody, who runs this check`);
  const out = await run(process.execPath, [CLI, 'validate', '-c', file], asNobody)
    .then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
  t.equal(out.code, 1);
  t.match(out.stderr, `${file}:5:73: tls.acme.storage: ${join(dir, 'readonly/acme')} cannot be created: ${join(dir, 'readonly')} is not writable by this process`);
  await chmod(join(dir, 'readonly'), 0o777);
  const ok = await run(process.execPath, [CLI, 'validate', '-c', file], asNobody);
  t.match(ok.stdout, ': ok (', 'writable: accepted');
});
