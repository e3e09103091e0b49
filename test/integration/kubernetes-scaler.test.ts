import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { validatePluginOptions } from '../../gateway/config/schema-validator.js';
import { pluginContext, type LoadReport } from '../../gateway/plugin-api/index.js';
import { kubernetesScaler, scalerAccess } from '../../plugins/scaling/kubernetes.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { writeExecCredentialScript } from '../helpers/exec-credential-script.js';
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
  const same = (p: string) => p;
  t.throws(() => scalerAccess({ kind: 'Deployment', name: '{service}', timeoutMs: 1000 }, same, { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }), /serviceaccount\/token/,
    'outside a pod the service-account files are missing, and it says which');
  const access = scalerAccess({ kind: 'Deployment', name: '{service}', timeoutMs: 1000, apiServer: 'https://k8s.example:6443/' }, same, {});
  t.equal(access.server, 'https://k8s.example:6443');
  t.equal(access.namespace, 'default');
});

t.test('a kubeconfig is read as kubectl reads it: file names relative to its own directory, not the working directory', async (t) => {
  const api = await startKubeApiStandIn(TOKEN);
  t.teardown(() => api.close());
  api.workloads.set('shop/deployments/web', 2);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-kube-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'sa-token'), `${TOKEN}\n`);
  await writeFile(join(dir, 'config'), `current-context: prod
clusters: [{ name: standin, cluster: { server: "${api.url}" } }]
contexts: [{ name: prod, context: { cluster: standin, user: gantry, namespace: shop } }]
users: [{ name: gantry, user: { tokenFile: sa-token } }]
`);
  t.not(process.cwd(), dir);
  t.equal(await create({ kubeconfig: join(dir, 'config') }).currentReplicas('web', AbortSignal.timeout(3000)), 2, 'tokenFile: sa-token found beside the kubeconfig');
});

t.test('exec credential plugins (EKS/GKE/AKS logins): run by the ExecCredential protocol, token kept until it expires', async (t) => {
  const api = await startKubeApiStandIn(TOKEN);
  t.teardown(() => api.close());
  api.workloads.set('shop/deployments/web', 2);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-kube-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = await writeExecCredentialScript(dir, 'get-token');
  const kubeconfig = async (env: Record<string, string>, extra = '') => {
    const file = join(dir, `config-${Object.keys(env).join('-')}`);
    await writeFile(file, `current-context: prod
clusters: [{ name: standin, cluster: { server: "${api.url}" } }]
contexts: [{ name: prod, context: { cluster: standin, user: eks, namespace: shop } }]
users:
  - name: eks
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: ./get-token
        interactiveMode: Never
        env: [${Object.entries(env).map(([name, value]) => JSON.stringify({ name, value })).join(', ')}]
${extra}`);
    return file;
  };
  const signal = () => AbortSignal.timeout(10_000);

  const lasting = create({ kubeconfig: await kubeconfig({ TEST_TOKEN: TOKEN, TEST_EXPIRY: new Date(Date.now() + 3_600_000).toISOString() }, '        provideClusterInfo: true\n') });
  t.equal(await lasting.currentReplicas('web', signal()), 2, 'the command (./get-token, beside the kubeconfig) gave the token');
  await lasting.scale('web', 3, REPORT, signal());
  t.equal(await lasting.currentReplicas('web', signal()), 3);
  t.equal(await script.runs(), 1, 'run once: the token is kept until its expirationTimestamp');
  t.equal(api.requests.at(-1)?.authorization, `Bearer ${TOKEN}`);

  const expired = create({ kubeconfig: await kubeconfig({ TEST_TOKEN: TOKEN, TEST_EXPIRY: new Date(Date.now() - 1000).toISOString() }) });
  await expired.currentReplicas('web', signal());
  await expired.currentReplicas('web', signal());
  t.equal(await script.runs(), 3, 'a token already expired is asked for again at the next call');

  const failing = create({ kubeconfig: await kubeconfig({ TEST_FAIL: 'error: SSO session expired; run aws sso login' }) });
  await t.rejects(failing.currentReplicas('web', signal()), /exec credential plugin .*get-token failed: .*SSO session expired; run aws sso login/,
    'a plugin that fails says why (its stderr)');
  const wrongToken = create({ kubeconfig: await kubeconfig({ TEST_TOKEN: 'stale' }) });
  await t.rejects(wrongToken.currentReplicas('web', signal()), /401/);
  const before = await script.runs();
  await t.rejects(wrongToken.currentReplicas('web', signal()), /401/);
  t.equal(await script.runs(), before + 1, 'a token the server refused (401) is not kept: the plugin runs again');
});
