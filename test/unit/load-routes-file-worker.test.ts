import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { largeRoutesYaml } from '../../bench/large-routes-file.js';
import { IN_THREAD_MAX_CHARS, loadRoutesFile, parseRoutes } from '../../gateway/config/load-routes-file.js';
import { ConfigError, formatProblem } from '../../gateway/errors.js';
import { createBuiltinRegistry } from '../../plugins/index.js';

const plugins = createBuiltinRegistry();
const BIG = largeRoutesYaml({ routes: 300, services: 5, upstream: 'http://127.0.0.1:3001' });

async function problems(run: () => Promise<unknown> | unknown): Promise<string[]> {
  try {
    await run();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}

t.test('a large file is checked in a worker with the same result as in the calling thread', async (t) => {
  t.ok(BIG.length > IN_THREAD_MAX_CHARS, `${BIG.length} characters go to the worker`);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-worker-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.yaml');
  const both = async (text: string) => {
    await writeFile(file, text);
    return { worker: await problems(() => loadRoutesFile(file, plugins)), inThread: await problems(() => parseRoutes(text, file, plugins)) };
  };

  await writeFile(file, BIG);
  const viaWorker = await loadRoutesFile(file, plugins);
  t.same(viaWorker, parseRoutes(BIG, file, plugins), 'the same config');
  t.ok(Object.isFrozen(viaWorker.routes[299]?.match), 'frozen all the way down');

  const cases = {
    syntax: `${BIG}  - name: broken\n    match: { path: /x\n`,
    schema: BIG.replace('    service: svc-1\n', '    service: svc-1\n    colour: blue\n').replace('listen: ', 'listen: nowhere'),
    routes: BIG.replace(/(- name: r299\n    match: \{ )/, '$1pathRegex: "(", '),
    services: BIG.replace('  svc-2:\n    discovery: { type: static, endpoints: ["http://127.0.0.1:3001"] }', '  svc-2:\n    discovery: { type: static, endpoints: ["ftp://x"] }\n    hashOn: client-ip'),
  };
  for (const [name, text] of Object.entries(cases)) {
    const found = await both(text);
    t.ok(found.worker.length > 0, `${name}: ${found.worker.join(' | ')}`);
    t.same(found.worker, found.inThread, `${name}: the same problems at the same places`);
  }
  // Plugin modules are loaded by loadRoutesFile only: the worker hands their entries back with their positions.
  await writeFile(file, `plugins: [./nowhere.mjs]\n${BIG}`);
  t.match(await problems(() => loadRoutesFile(file, plugins)), [/routes\.yaml:1:11: plugins\[0\]: cannot load plugin module "\.\/nowhere\.mjs"/]);
});
