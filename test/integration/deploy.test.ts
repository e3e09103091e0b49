import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceAccount, ConfigMap, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { loadRoutesFile } from '../../gateway/config/load-routes-file.js';

// deploy/ as shipped in the package (package.json files). What can be checked on this machine is: the systemd unit
// with systemd-analyze verify, the Kubernetes manifests against the Kubernetes API's own schemas (kubernetes-models)
// and their routes.yaml with Gantry's validation, the Dockerfile by reading it (no container engine runs here).
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
// Where the unit and the image install the package: /opt/gantry/node_modules/gantry/ is this checkout's root.
const INSTALLED = '/opt/gantry/node_modules/gantry/';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function directives(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

t.test('the systemd unit passes systemd-analyze verify and reloads, stops and runs the way docs/production.md says', async (t) => {
  const text = await readFile(join(DEPLOY, 'systemd', 'gantry.service'), 'utf8');
  const d = directives(text);
  t.same(d.get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  t.same(d.get('KillSignal'), ['SIGTERM']);
  t.ok(Number(d.get('TimeoutStopSec')?.[0]) >= 40, 'TimeoutStopSec covers the default drain grace (30 s) and the scaler instances\' stop (10 s)');
  t.same(d.get('User'), ['gantry'], 'a dedicated user');
  t.same(d.get('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
  t.ok(Number(d.get('LimitNOFILE')?.[0]) >= 65536);
  const start = d.get('ExecStart')?.[0]?.split(' ') ?? [];
  t.match(start.slice(1, 3), [`${INSTALLED}dist/gateway/cli.js`, 'start'], 'runs the gateway itself, not npx or npm');
  t.ok(existsSync(join(ROOT, start[1]!.slice(INSTALLED.length))), 'the path it runs exists in the package');
  t.equal(start[start.indexOf('--pid-file') + 1], '/run/gantry/gantry.pid', 'the pid file, in its RuntimeDirectory, for logrotate');
  t.same(d.get('RuntimeDirectory'), ['gantry']);

  // verify checks that the executables exist: this machine's Node stands in for /usr/bin/node.
  const dir = await mkdtemp(join(tmpdir(), 'gantry-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const unit = join(dir, 'gantry.service');
  await writeFile(unit, text.replaceAll('/usr/bin/node ', `${process.execPath} `));
  const verified = await run('systemd-analyze', ['verify', unit]);
  t.equal(verified.code, 0, 'systemd-analyze verify exits 0', { stderr: verified.stderr });
  t.equal(verified.stderr, '', 'and has nothing to say');
});

const KINDS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/ServiceAccount': ServiceAccount, 'v1/ConfigMap': ConfigMap, 'v1/Service': Service, 'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/Role': Role, 'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

type Obj = Record<string, any>;   // manifests are checked field by field below

t.test('the Kubernetes manifests match the API schemas, and hold what production needs', async (t) => {
  const docs = parseAllDocuments(await readFile(join(DEPLOY, 'kubernetes', 'gantry.yaml'), 'utf8'));
  const objects = docs.map((doc) => {
    t.same(doc.errors, [], 'the YAML parses');
    return doc.toJS() as Obj;
  });
  for (const o of objects) {
    const Kind = KINDS[`${o.apiVersion}/${o.kind}`];
    if (!Kind) { t.fail(`no schema check for ${o.apiVersion} ${o.kind}`); continue; }
    t.doesNotThrow(() => new Kind(o as never).validate(), `${o.kind} ${o.metadata?.name} is valid`);
  }
  const find = (kind: string) => objects.find((o) => o.kind === kind) as Obj;
  const deployment = find('Deployment');
  t.ok(deployment.spec.replicas >= 2, 'two replicas or more');
  const pod = deployment.spec.template.spec;
  const gantry = pod.containers.find((c: Obj) => c.name === 'gantry');
  t.equal(gantry.readinessProbe.httpGet.path, '/readyz');
  t.equal(gantry.livenessProbe.httpGet.path, '/healthz');
  const adminPort = gantry.ports.find((p: Obj) => p.name === 'admin').containerPort;
  t.same([gantry.readinessProbe.httpGet.port, gantry.livenessProbe.httpGet.port], ['admin', 'admin'], 'probes on the admin listener');
  t.ok(pod.terminationGracePeriodSeconds >= 35, 'the grace covers the drain');
  t.equal(pod.serviceAccountName, find('ServiceAccount').metadata.name);
  t.equal(pod.securityContext.runAsNonRoot, true);

  // The ConfigMap's routes.yaml is a valid Gantry config listening where the pod's ports say.
  const configMap = find('ConfigMap');
  const volume = pod.volumes.find((v: Obj) => v.configMap?.name === configMap.metadata.name);
  t.ok(volume, 'the ConfigMap is mounted');
  t.ok(gantry.volumeMounts.every((m: Obj) => !m.subPath), 'as a directory (a subPath mount is never updated)');
  const dir = await mkdtemp(join(tmpdir(), 'gantry-k8s-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'routes.yaml'), configMap.data['routes.yaml']);
  const config = await loadRoutesFile(join(dir, 'routes.yaml'), createBuiltinRegistry());
  t.equal(config.admin?.port, adminPort, 'routes.yaml\'s admin listener is the probed port');
  t.equal(config.listen.port, gantry.ports.find((p: Obj) => p.name === 'http').containerPort);

  // Reload on change: the sidecar runs the script shipped in the package, on the same mount.
  const reloader = pod.containers.find((c: Obj) => c.name === 'config-reloader');
  const script = reloader.command[1] as string;
  t.ok(script.startsWith(INSTALLED) && existsSync(join(ROOT, script.slice(INSTALLED.length))), 'the reloader script is in the package');
  t.equal(reloader.command[2], `${gantry.volumeMounts.find((m: Obj) => m.name === volume.name).mountPath}/routes.yaml`);

  const rules = find('Role').rules as Obj[];
  const allows = (group: string, resource: string, verb: string) => rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
  for (const verb of ['list', 'watch']) t.ok(allows('discovery.k8s.io', 'endpointslices', verb), `RBAC: ${verb} EndpointSlices`);
  for (const verb of ['get', 'patch']) t.ok(allows('apps', 'deployments/scale', verb), `RBAC: ${verb} the scale subresource`);
  const binding = find('RoleBinding');
  t.same([binding.roleRef.name, binding.subjects[0].name], [find('Role').metadata.name, pod.serviceAccountName]);
  const pdb = find('PodDisruptionBudget');
  t.same(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels, 'the PodDisruptionBudget covers the pods');
  t.ok(pdb.spec.minAvailable >= 1);
});

t.test('the fleet example: three replicas of one config with fleet:, a valid routes.yaml, RBAC for the kubernetes scaler', async (t) => {
  const objects = parseAllDocuments(await readFile(join(DEPLOY, 'kubernetes', 'fleet.yaml'), 'utf8')).map((doc) => {
    t.same(doc.errors, [], 'the YAML parses');
    return doc.toJS() as Obj;
  });
  for (const o of objects) {
    const Kind = KINDS[`${o.apiVersion}/${o.kind}`];
    if (!Kind) { t.fail(`no schema check for ${o.apiVersion} ${o.kind}`); continue; }
    t.doesNotThrow(() => new Kind(o as never).validate(), `${o.kind} ${o.metadata?.name} is valid`);
  }
  const find = (kind: string) => objects.find((o) => o.kind === kind) as Obj;
  const deployment = find('Deployment');
  t.equal(deployment.spec.replicas, 3);
  t.equal(deployment.spec.template.spec.serviceAccountName, find('ServiceAccount').metadata.name);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-k8s-fleet-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'routes.yaml'), find('ConfigMap').data['routes.yaml']);
  const config = await loadRoutesFile(join(dir, 'routes.yaml'), createBuiltinRegistry());
  t.match(config.fleet, { name: 'edge', etcd: { endpoints: ['http://etcd:2379'] } });
  t.equal(config.services.get('users')?.scaling?.scaler.type, 'kubernetes');
  const rules = find('Role').rules as Obj[];
  for (const verb of ['get', 'patch']) t.ok(rules.some((r) => r.apiGroups.includes('apps') && r.resources.includes('deployments/scale') && r.verbs.includes(verb)), `RBAC: ${verb} the scale subresource`);
});

t.test('the Dockerfile (read, not built: no container engine here): Node 26, two stages, non-root, tini, /readyz health check', async (t) => {
  const text = await readFile(join(DEPLOY, 'container', 'Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  const froms = lines.filter((l) => l.startsWith('FROM '));
  t.equal(froms.length, 2, 'multi-stage');
  t.ok(froms.every((l) => /^FROM node:26[-.\w]*( AS \w+)?$/.test(l)), 'both on the Node 26 image');
  t.match(lines.find((l) => l.startsWith('USER ')), /^USER node$/);
  t.match(text, /HEALTHCHECK [^\n]*\\\n\s+CMD [^\n]*127\.0\.0\.1:9901\/readyz/);
  const entry = JSON.parse(lines.find((l) => l.startsWith('ENTRYPOINT '))!.slice('ENTRYPOINT '.length)) as string[];
  t.same(entry.slice(0, 3), ['/usr/bin/tini', '--', 'node'], 'tini is PID 1 and passes signals on');
  t.ok(entry[3]!.startsWith(INSTALLED) && existsSync(join(ROOT, entry[3]!.slice(INSTALLED.length))), 'the entrypoint is in the package');
  const routes = await loadRoutesFile(join(DEPLOY, 'container', 'routes.yaml'), createBuiltinRegistry());
  t.same([routes.listen.port, routes.admin?.port], [8080, 9901], 'the image\'s default routes.yaml listens on the EXPOSEd ports');
  t.match(text, /^EXPOSE 8080 9901$/m);
});
