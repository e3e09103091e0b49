import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadRoutesFile } from '../../gateway/config/load-routes-file.js';
import { formatProblem, isConfigError } from '../../gateway/errors.js';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

/** The loader in-process (what `gantry validate` runs), for the cases where the CLI adds nothing. */
async function problems(file: string): Promise<string[]> {
  try {
    await loadRoutesFile(file, createBuiltinRegistry());
    return [];
  } catch (err) {
    if (isConfigError(err)) return err.problems.map(formatProblem);
    throw err;
  }
}

function validate(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'validate', '-c', file], { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

// A third-party plugin as someone would publish it: plain JavaScript, no import from Gantry needed.
const PLUGIN = `export default {
  kind: 'discovery',
  type: 'fixed-list',
  optionsSchema: {
    type: 'object', additionalProperties: false, required: ['addresses'],
    properties: { addresses: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^http://' } } },
  },
  check(o) { return o.addresses.length > 3 ? [[['addresses'], 'at most 3']] : []; },
  create(o) {
    return {
      async *watch(_service, signal) {
        yield { kind: 'reset', endpoints: o.addresses.map((address) => ({ address, weight: 1 })) };
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      },
      async close() {},
    };
  },
};
`;

function routes(plugins: string[], discovery: string): string {
  return `listen: 127.0.0.1:0
log: { level: warn }
plugins:
${plugins.map((p) => `  - ${JSON.stringify(p)}\n`).join('')}services:
  svc:
    discovery: ${discovery}
routes:
  - { match: { path: / }, service: svc }
`;
}

t.test('third-party plugins: loaded by path or package name, validated like a built-in, mistakes reported at file:line:col', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-3p-'));
  const up = await startRecordingUpstream();
  t.teardown(async () => { await up.close(); await rm(dir, { recursive: true, force: true }); });
  await writeFile(join(dir, 'fixed-list.mjs'), PLUGIN);
  const pkg = join(dir, 'node_modules', 'gantry-plugin-fixed');
  await mkdir(pkg, { recursive: true });
  await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'gantry-plugin-fixed', type: 'module', main: 'index.js' }));
  await writeFile(join(pkg, 'index.js'), PLUGIN.replace("type: 'fixed-list'", "type: 'fixed-pkg'"));
  await writeFile(join(dir, 'no-create.mjs'), "export default { kind: 'discovery', type: 'Bad Type', optionsSchema: { type: 'object' } };\n");
  await writeFile(join(dir, 'bad-schema.mjs'), "export const plugins = [{ kind: 'discovery', type: 'bad-schema', optionsSchema: { type: 'object', properties: { x: { type: 'colour' } } }, create() {} }];\n");
  await writeFile(join(dir, 'clash.mjs'), PLUGIN.replace("type: 'fixed-list'", "type: 'dns'"));
  await writeFile(join(dir, 'nothing.mjs'), 'export const x = 1;\n');

  // Through the real gateway (its routes file lives in another directory, so the path is absolute here).
  const gw = await startGateway(routes([join(dir, 'fixed-list.mjs')], `{ type: fixed-list, addresses: ["${up.url}"] }`));
  t.teardown(() => gw.close());
  t.equal((await fetch(`${gw.url}/`)).status, 200, 'the plugin\'s endpoints take traffic');
  t.equal(up.requests.length, 1);
  t.equal(gw.gateway.current().services.get('svc')!.pool.status.up, true);

  const file = join(dir, 'routes.yaml');
  await writeFile(file, routes(['./fixed-list.mjs', 'gantry-plugin-fixed'], `{ type: fixed-pkg, addresses: ["${up.url}"] }`));
  t.same(await problems(file), [], 'a relative path and a package installed beside routes.yaml both load');

  await writeFile(file, routes(['./fixed-list.mjs'], '{ type: fixed-list, addresses: ["ftp://x", "http://a", "http://b", "http://c"] }'));
  t.same(await problems(file), [`${file}:7:48: services.svc.discovery.addresses[0]: must match ^http://`],
    'its options are checked against its schema, with file:line:col');
  await writeFile(file, routes(['./fixed-list.mjs'], '{ type: fixed-list, addresses: ["http://a", "http://b", "http://c", "http://d"] }'));
  t.same(await problems(file), [`${file}:7:47: services.svc.discovery.addresses: at most 3`], 'and against its check()');

  await writeFile(file, routes(['./missing.mjs', 'gantry-plugin-nowhere', './no-create.mjs', './bad-schema.mjs', './clash.mjs', './nothing.mjs'], '{ type: static, endpoints: ["http://127.0.0.1:1"] }'));
  const bad = await validate(file);
  t.equal(bad.code, 1);
  const lines = bad.stderr.trim().split('\n');
  t.match(lines[0], new RegExp(`^${file}:4:5: plugins\\[0\\]: cannot load plugin module "\\./missing\\.mjs": Cannot find module`));
  t.match(lines[1], new RegExp(`^${file}:5:5: plugins\\[1\\]: cannot load plugin module "gantry-plugin-nowhere": Cannot find package`));
  t.match(lines[2], new RegExp(`^${file}:6:5: plugins\\[2\\]: plugin module "\\./no-create\\.mjs" is not a valid discovery plugin: type must be lower-case .*; create\\(options, ctx\\) must be a function$`));
  t.match(lines[3], new RegExp(`^${file}:7:5: plugins\\[3\\]: plugin module "\\./bad-schema\\.mjs": optionsSchema is not a valid JSON Schema: `));
  t.match(lines[4], new RegExp(`^${file}:8:5: plugins\\[4\\]: plugin module "\\./clash\\.mjs": type "dns" is a built-in plugin's$`));
  t.match(lines[5], new RegExp(`^${file}:9:5: plugins\\[5\\]: plugin module "\\./nothing\\.mjs" exports no plugin`));
  t.equal(lines[6], `${file}: 6 problems`);

  await writeFile(file, routes(['./fixed-list.mjs'], '{ type: fixed-lst, addresses: ["http://a"] }'));
  t.match((await problems(file))[0], /services\.svc\.discovery\.type: unknown discovery type "fixed-lst" \(known: static, file, dns, etcd, consul, kubernetes, fixed-list\)/);
});
