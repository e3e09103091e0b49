import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function gantry(args: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

t.test('gantry validate accepts the default routes.yaml', async (t) => {
  const r = await gantry(['validate']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^routes\.yaml: ok \(\d+ routes, \d+ services\)/);
});

t.test('gantry validate lists every problem as file:line:col and exits 1, like nginx -t', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  await writeFile(file, `services:
  a: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] }, balancer: best }
routes:
  - { match: { path: nope }, service: a }
`);
  const r = await gantry(['validate', '-c', file]);
  t.equal(r.code, 1);
  t.same(r.stderr.trim().split('\n'), [
    `${file}:2:82: services.a.balancer: must be one of: round-robin, weighted-round-robin, random, least-request, p2c, consistent-hash`,
    `${file}:4:22: routes[0].match.path: must start with "/"`,
    `${file}: 2 problems`,
  ]);
});

t.test('a missing file is one clear line', async (t) => {
  const r = await gantry(['validate', '-c', '/nonexistent/routes.yaml']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^\/nonexistent\/routes\.yaml:0:0: cannot read: ENOENT/);
});

t.test('--version prints the package version and the Node.js version, --help the usage', async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.equal((await gantry(['--version'])).stdout, `gantry ${pkg.version} (Node.js ${process.version})\n`);
  const help = await gantry(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /gantry start/);
  t.match(help.stdout, /gantry validate/);
  const unknown = await gantry(['frobnicate']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /unknown command "frobnicate"/);
});

t.test('gantry start refuses an invalid file with its problems and exit 1, with workers too (the primary checks it)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  await writeFile(file, 'services: {}\nroutes: []\n');
  for (const workers of [[], ['--workers', '2']]) {
    const r = await gantry(['start', '-c', file, ...workers]);
    t.equal(r.code, 1, `exit 1 ${workers.join(' ')}`);
    t.match(r.stderr, new RegExp(`${file}:1:11: services: must NOT have fewer than 1 properties`));
  }
});
