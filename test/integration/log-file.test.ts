import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

async function linesOf(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}


t.test('log.file: lines go to the file; SIGUSR2 reopens it after logrotate renamed it, losing none', async (t) => {
  const up = await startRecordingUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'gantry-log-'));
  await writeFile(join(dir, 'routes.yaml'), `listen: 127.0.0.1:0
admin: null
log: { file: gantry.log }
services:
  svc: { discovery: { type: static, endpoints: ["${up.url}"] } }
routes:
  - { match: { path: / }, service: svc }
`);
  const child = spawn(process.execPath, [CLI, 'start', '-c', join(dir, 'routes.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null) { child.kill('SIGKILL'); await exited; }
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });
  const log = join(dir, 'gantry.log');   // relative to the routes file, not to the working directory
  const started = await waitFor(async () => (await linesOf(log)).find((l) => l.event === 'started'), 10_000, 'started line', 50);
  const port = (started.listen as { port: number }).port;

  for (let i = 0; i < 3; i++) await (await fetch(`http://127.0.0.1:${port}/before-${i}`)).text();
  await waitFor(async () => ((await linesOf(log)).filter((l) => l.msg === 'request').length === 3 ? true : undefined), 10_000, '3 access lines', 50);
  await rename(log, join(dir, 'gantry.log.1'));
  // Written after the rename and before the signal: still goes to the renamed file (the fd is unchanged).
  await (await fetch(`http://127.0.0.1:${port}/between`)).text();
  child.kill('SIGUSR2');
  await waitFor(async () => (await linesOf(log)).find((l) => l.event === 'log-reopened'), 10_000, 'reopened line', 50);
  for (let i = 0; i < 2; i++) await (await fetch(`http://127.0.0.1:${port}/after-${i}`)).text();

  child.kill('SIGTERM');
  await exited;
  const rotated = (await linesOf(join(dir, 'gantry.log.1'))).filter((l) => l.msg === 'request').map((l) => l.path);
  const fresh = (await linesOf(log)).filter((l) => l.msg === 'request').map((l) => l.path);
  t.same(rotated, ['/before-0', '/before-1', '/before-2', '/between']);
  t.same(fresh, ['/after-0', '/after-1']);
  t.equal(stdout, '', 'nothing was written to stdout');
  t.equal(child.exitCode, 0);
});

t.test('a log.file that cannot be opened stops the start with a config error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, `listen: 127.0.0.1:0
admin: null
log: { file: missing-dir/gantry.log }
services:
  svc: { discovery: { type: static, endpoints: ["http://127.0.0.1:1"] } }
routes:
  - { match: { path: / }, service: svc }
`);
  const child = spawn(process.execPath, [CLI, 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const [code] = await once(child, 'exit') as [number];
  t.equal(code, 1);
  t.match(stderr, `${file}:0:0: log.file: cannot open ${join(dir, 'missing-dir/gantry.log')}: ENOENT`);
});
