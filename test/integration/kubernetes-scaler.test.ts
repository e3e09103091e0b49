import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { validatePluginOptions } from '../../gateway/config/schema-validator.js';
import { pluginContext, type LoadReport } from '../../gateway/plugin-api/index.js';
import { kubernetesScaler, resolveAccess } from '../../plugins/scaling/kubernetes.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { startKubeApiStandIn } from '../helpers/kube-apiserver-standin.js';

const TOKEN = 'test-service-account-token';
const REPORT = {} as LoadReport;

function create(options: Record<string, unknown>) {
  const problems = validatePluginOptions(kubernetesScaler.optionsSchema, options, []);
  if (problems.length) throw new Error(JSON.stringify(problems));
  return kubernetesScaler.create(options as never, pluginContext(captureLogger().log, new AbortController().signal, Date.now, process.cwd()));
}

t.test('reads and merge-patches the scale subresource of a Deployment (kubeconfig with a token)', async (t) => {
  const api = await startKubeApiStandIn(TOKEN);
  t.teardown(() => api.close());
  api.workloads.set('shop/deployments/web', 2);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-kube-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'config');
  await writeFile(kubeconfig, `apiVersion: v1
kind: Config
current-context: prod
clusters:
  - name: standin
    cluster: { server: "${api.url}" }
contexts:
  - name: prod
    context: { cluster: standin, user: gantry, namespace: shop }
  - name: other
    context: { cluster: standin, user: nobody }
users:
  - name: gantry
    user: { token: ${TOKEN} }
  - name: nobody
    user: {}
`);
  const scaler = create({ kubeconfig });
  t.equal(await scaler.currentReplicas('web', AbortSignal.timeout(3000)), 2);
  await scaler.scale('web', 5, REPORT, AbortSignal.timeout(3000));
  t.equal(api.workloads.get('shop/deployments/web'), 5);
  t.equal(await scaler.currentReplicas('web', AbortSignal.timeout(3000)), 5);
  const patch = api.requests.find((r) => r.method === 'PATCH');
  t.same(patch, {
    method: 'PATCH', path: '/apis/apps/v1/namespaces/shop/deployments/web/scale', contentType: 'application/merge-patch+json',
    body: '{"spec":{"replicas":5}}', authorization: `Bearer ${TOKEN}`,
  });
  await scaler.scale('web', 0, REPORT, AbortSignal.timeout(3000));
  t.equal(await scaler.currentReplicas('web', AbortSignal.timeout(3000)), 0, 'an omitted spec.replicas reads as 0');

  const unauthorised = create({ kubeconfig, context: 'other', namespace: 'shop' });
  await t.rejects(unauthorised.currentReplicas('web', AbortSignal.timeout(3000)), /HTTP 401: Unauthorized/);
  await t.rejects(create({ kubeconfig, context: 'missing' }).currentReplicas('web', AbortSignal.timeout(3000)), /no context "missing"/, 'a bad kubeconfig is a failed call, not a crash');
});

t.test('StatefulSets, name templates, an explicit API server with a token file; errors and hangs', async (t) => {
  const api = await startKubeApiStandIn(TOKEN);
  t.teardown(() => api.close());
  api.workloads.set('data/statefulsets/db-primary', 3);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-kube-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  const scaler = create({ apiServer: api.url, tokenFile, namespace: 'data', kind: 'StatefulSet', name: '{service}-primary', timeoutMs: 300 });
  t.equal(await scaler.currentReplicas('DB', AbortSignal.timeout(3000)), 3, 'service names are lower-cased for Kubernetes');
  await scaler.scale('DB', 4, REPORT, AbortSignal.timeout(3000));
  t.equal(api.workloads.get('data/statefulsets/db-primary'), 4);
  await t.rejects(scaler.currentReplicas('cache', AbortSignal.timeout(3000)), /HTTP 404: statefulsets.apps "cache-primary" not found/);
  // The token is read per call: a rotated service-account token is picked up.
  await writeFile(tokenFile, 'rotated');
  await t.rejects(scaler.currentReplicas('DB', AbortSignal.timeout(3000)), /401/);
  await writeFile(tokenFile, TOKEN);
  api.hang = true;
  const started = Date.now();
  await t.rejects(scaler.scale('DB', 5, REPORT, AbortSignal.timeout(3000)));
  t.ok(Date.now() - started < 1500, 'the per-request timeout ends a hung API server call');
});

t.test('in-cluster configuration comes from the service account and KUBERNETES_SERVICE_HOST', async (t) => {
  t.throws(() => resolveAccess({ kind: 'Deployment', name: '{service}', timeoutMs: 1000 }, { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }), /ca\.crt/,
    'outside a pod the service-account files are missing, and it says which');
  const access = resolveAccess({ kind: 'Deployment', name: '{service}', timeoutMs: 1000, apiServer: 'https://k8s.example:6443/' }, {});
  t.equal(access.server, 'https://k8s.example:6443');
  t.equal(access.namespace, 'default');
});
