import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseEndpointsFile } from '../../plugins/discovery/file.js';
import { waitFor } from '../helpers/capture-log.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

function gatewayYaml(file: string): string {
  return `listen: 127.0.0.1:0
log: { level: debug, access: false }
services:
  users:
    discovery: { type: file, path: ${JSON.stringify(file)}, pollIntervalMs: 5000 }
routes:
  - { match: { path: / }, service: users }
`;
}

/** Writes like a careful writer does: a temporary file renamed over the real one. */
async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

t.test('parseEndpointsFile reads YAML and JSON and says where a file is wrong', async (t) => {
  t.same(parseEndpointsFile('users:\n  - http://127.0.0.1:1\n  - { url: "http://[::1]:2", weight: 3, metadata: { zone: a } }\n', 'f.yaml', 'users'), [
    { address: 'http://127.0.0.1:1', weight: 1 },
    { address: 'http://[::1]:2', weight: 3, metadata: { zone: 'a' } },
  ]);
  t.same(parseEndpointsFile('{"users": ["https://127.0.0.1"]}', 'f.json', 'users'), [{ address: 'https://127.0.0.1:443', weight: 1 }]);
  t.same(parseEndpointsFile('users: []\n', 'f.yaml', 'users'), [], 'an empty list is an answer');
  const bad: [string, RegExp][] = [
    ['users:\n  - http://127.0.0.1:1\n  - [\n', /^f\.yaml:\d+:\d+: /],
    ['', /must be a mapping .*\(the file is empty\)/],
    ['others: []\n', /no entry "users"/],
    ['users: http://x:1\n', /f\.yaml:1:1: users: must be a list/],
    ['users:\n  - http://127.0.0.1:1\n  - ftp://127.0.0.1:2\n', /^f\.yaml:3:5: users\[1\]: unsupported scheme ftp:/],
    ['users:\n  - { url: "http://h:1", weight: 0 }\n', /users\[0\]: weight must be an integer/],
    ['users:\n  - { url: "http://h:1", colour: red }\n', /users\[0\]: unknown field "colour"/],
    ['users:\n  - 42\n', /users\[0\]: an endpoint is a URL/],
  ];
  for (const [text, message] of bad) t.throws(() => parseEndpointsFile(text, 'f.yaml', 'users'), message, JSON.stringify(text));
});

t.test('file discovery: atomic renames are seen at once; a broken or missing file keeps the last endpoints', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-file-'));
  const file = join(dir, 'endpoints.yaml');
  const [a, b] = await Promise.all([startRecordingUpstream(), startRecordingUpstream()]);
  await writeAtomically(file, `users:\n  - ${a.url}\n`);
  const gw = await startGateway(gatewayYaml(file));
  t.teardown(async () => { await gw.close(); await a.close(); await b.close(); await rm(dir, { recursive: true, force: true }); });
  const pool = gw.gateway.current().services.get('users')!.pool;
  t.equal((await fetch(`${gw.url}/x`)).status, 200);
  t.equal(a.requests.length, 1);

  const written = Date.now();
  await writeAtomically(file, `users:\n  - ${a.url}\n  - { url: "${b.url}", weight: 2 }\n`);
  await waitFor(() => pool.endpoints.length === 2, 3000, 'second endpoint');
  t.ok(Date.now() - written < 1000, `seen ${Date.now() - written} ms after the rename (the poll is 5 s)`);
  for (let i = 0; i < 6; i++) t.equal((await fetch(`${gw.url}/x`)).status, 200);
  t.ok(b.requests.length > 0, 'traffic reached the new endpoint');

  await writeAtomically(file, `users:\n  - ${a.url}\n  - [broken\n`);
  await waitFor(() => !pool.status.up, 3000, 'down on a broken file');
  t.match(pool.status.lastError, new RegExp(`^${file}:\\d+:\\d+: `), 'the reason has file:line:col');
  t.equal(pool.endpoints.length, 2, 'the last endpoints stay');
  for (let i = 0; i < 4; i++) t.equal((await fetch(`${gw.url}/x`)).status, 200);

  await writeAtomically(file, `users:\n  - ${b.url}\n`);
  await waitFor(() => pool.status.up && pool.endpoints.length === 1, 3000, 'fixed file');
  t.equal(pool.endpoints[0]?.address, b.url);

  await unlink(file);
  await waitFor(() => !pool.status.up, 3000, 'down on a missing file');
  t.match(pool.status.lastError, /cannot read: ENOENT/);
  t.equal(pool.endpoints.length, 1);
  t.equal((await fetch(`${gw.url}/x`)).status, 200);
  const downLines = gw.logs.filter((l) => l.event === 'discovery-down');
  t.equal(downLines.length, 2, 'one log line per change of state');

  // A plain (non-atomic) rewrite is seen too.
  await writeFile(file, `users:\n  - ${a.url}\n  - ${b.url}\n`);
  await waitFor(() => pool.status.up && pool.endpoints.length === 2, 3000, 'recreated file');
});
