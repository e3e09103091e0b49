/**
 * Policy plugins (docs/policies.md, "Policy plugins"): the worked example examples/plugins/api-version.mjs loaded from
 * its file under `plugins:`, run in the route's chain like a built-in kind (request hook, answer hook, an answer at
 * the edge, metrics), and checked at load like one (schema, `check`, a malformed module) at file:line:col.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadRoutesFile } from '../../gateway/config/load-routes-file.js';
import { formatProblem, isConfigError } from '../../gateway/errors.js';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { metricValue, send, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/plugins/api-version.mjs', import.meta.url));

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());

function yaml(policies: string, plugin = EXAMPLE): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
plugins: ["${plugin}"]
policies:
${policies}
services:
  svc: { discovery: { type: static, endpoints: ["${upstream.url}"] } }
routes:
  - { name: api, match: { path: /api }, service: svc, policies: [versioned] }
`;
}

async function problems(dir: string, text: string): Promise<string[]> {
  const file = join(dir, 'check.yaml');
  await writeFile(file, text);
  try {
    await loadRoutesFile(file, createBuiltinRegistry());
    return [];
  } catch (err) {
    if (isConfigError(err)) return err.problems.map((p) => formatProblem(p).replace(`${dir}/`, ''));
    throw err;
  }
}

t.test('the example plugin, loaded from its file, runs in the route\'s chain: request and answer hooks, an answer at the edge', async (t) => {
  const g = await startPolicyGateway(yaml('  versioned: { apiVersion: { versions: ["2025-01", "2026-06"], default: "2026-06" } }'));
  t.teardown(() => g.close());
  const byDefault = await send(`${g.url4}/api/x`);
  t.equal(byDefault.status, 200);
  const seen = byDefault.json().headers as Record<string, string>;
  t.equal(seen['x-api-version'], '2026-06', 'the upstream gets the default version');
  t.equal(byDefault.headers['api-version'], '2026-06', 'the answer hook adds it to the answer');
  const asked = await send(`${g.url4}/api/x`, { 'api-version': '2025-01' });
  const seen2 = asked.json().headers as Record<string, string>;
  t.equal(seen2['x-api-version'], '2025-01');
  t.equal(seen2['api-version'], undefined, 'the hook removed the client\'s header');
  const before = upstream.requests.length;
  const refused = await send(`${g.url4}/api/x`, { 'api-version': '1999-01' });
  t.equal(refused.status, 400, 'answered at the edge');
  t.same(refused.json(), { error: 'unsupported-api-version', supported: ['2025-01', '2026-06'] });
  t.match(String(refused.headers['x-request-id']), /\S/, 'with the request id');
  t.equal(upstream.requests.length, before, 'the upstream never saw it');
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_refused_total', { policy: 'versioned', kind: 'apiVersion', reason: 'answered' }), 1);
  t.equal(await metricValue(g.adminUrl, 'gantry_policy_allowed_total', { policy: 'versioned', kind: 'apiVersion' }), 2);
});

t.test('a plugin\'s options are checked at load like a built-in kind\'s; a malformed policy plugin is refused at its entry', async (t) => {
  const g = await startPolicyGateway(yaml('  versioned: { apiVersion: { versions: ["2025-01"] } }'));
  t.teardown(() => g.close());
  t.same(await problems(g.dir, yaml('  versioned: { apiVersion: { versions: ["2025-1"], default: "2026-06" } }')), [
    'check.yaml:5:41: policies.versioned.apiVersion.versions[0]: must match ^[0-9]{4}-[0-9]{2}$',
  ]);
  t.same(await problems(g.dir, yaml('  versioned: { apiVersion: { versions: ["2025-01"], default: "2026-06" } }')), [
    'check.yaml:5:62: policies.versioned.apiVersion.default: "2026-06" is not one of the versions',
  ]);
  await g.write('bad.mjs', "export default { kind: 'policy', type: 'half-done', optionsSchema: { type: 'object' } };\n");
  const bad = await problems(g.dir, yaml('  versioned: { apiVersion: { versions: ["2025-01"] } }', './bad.mjs'));
  t.equal(bad.length, 1);
  t.match(bad[0], /^check\.yaml:3:\d+: plugins\[0\]: plugin module "\.\/bad\.mjs" is not a valid policy plugin: type must be a letter then letters and digits \(e\.g\. "apiVersion"\), got "half-done"; create\(options, ctx\) must be a function$/);
  await g.write('clash.mjs', "export default { kind: 'policy', type: 'cors', optionsSchema: { type: 'object' }, create: () => ({}) };\n");
  t.match((await problems(g.dir, yaml('  versioned: { cors: { origins: ["*"] } }', './clash.mjs')))[0], /plugins\[0\]: plugin module "\.\/clash\.mjs": policy kind "cors" is a built-in's$/);
});
