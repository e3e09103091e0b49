import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));
const TRACE = '0af7651916cd43dd8448eb211c80319c';

const linesOf = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);

t.test('log.accessFormat: combined lines (trace id last) beside the JSON gateway lines; a reload switches to a template', async (t) => {
  const up = await startRecordingUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'gantry-access-'));
  const routes = (format: string) => `listen: 127.0.0.1:0
admin: null
log: { file: gantry.log, accessFormat: ${JSON.stringify(format)} }
services:
  svc: { discovery: { type: static, endpoints: ["${up.url}"] } }
routes:
  - { name: api, match: { path: / }, service: svc }
`;
  await writeFile(join(dir, 'routes.yaml'), routes('combined'));
  const child = spawn(process.execPath, [CLI, 'start', '-c', join(dir, 'routes.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null) { child.kill('SIGKILL'); await exited; }
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });
  const log = join(dir, 'gantry.log');
  const startedLine = await waitFor(async () => (await linesOf(log)).find((l) => l.includes('"event":"started"')), 10_000, 'started line', 50);
  const port = (JSON.parse(startedLine) as { listen: { port: number } }).listen.port;

  await (await fetch(`http://127.0.0.1:${port}/items?page=2`, { headers: { traceparent: `00-${TRACE}-b7ad6b7169203331-01`, 'user-agent': 'probe/1.0', 'x-request-id': 'combined-1' } })).text();
  const combined = await waitFor(async () => (await linesOf(log)).find((l) => l.includes('combined-1')), 10_000, 'the access line', 50);
  t.match(combined, /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/items\?page=2 HTTP\/1\.1" 200 \d+ "-" "probe\/1\.0" [\d.]+ combined-1 0af7651916cd43dd8448eb211c80319c$/);
  t.ok((await linesOf(log)).filter((l) => l !== combined).every((l) => l.startsWith('{')), 'the gateway\'s own lines stay JSON');

  await writeFile(join(dir, 'routes.yaml'), routes('{reqId} {route} {status} trace={traceId}'));
  child.kill('SIGHUP');
  await waitFor(async () => (await linesOf(log)).some((l) => l.includes('"event":"reloaded"')), 10_000, 'the reload applied', 50);
  await (await fetch(`http://127.0.0.1:${port}/next`, { headers: { 'x-request-id': 'template-1' } })).text();
  const templated = await waitFor(async () => (await linesOf(log)).find((l) => l.startsWith('template-1')), 10_000, 'the templated line', 50);
  t.equal(templated, 'template-1 api 200 trace=-', 'the reload\'s template; no trace: `-`');
});
