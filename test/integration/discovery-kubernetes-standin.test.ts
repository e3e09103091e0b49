import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { serviceEndpoints, sliceEndpoints, type EndpointSlice } from '../../plugins/discovery/kubernetes.js';
import { inClusterAccess } from '../../plugins/kubernetes/api-access.js';
import { kubeconfigAccess } from '../../plugins/kubernetes/kubeconfig.js';
import { waitFor } from '../helpers/capture-log.js';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startKubernetesStandIn } from '../helpers/kubernetes-standin.js';
import { writeExecCredentialScript } from '../helpers/exec-credential-script.js';

const TOKEN = 'sa-token-1';

type Conditions = { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };

function slice(name: string, port: number, endpoints: ({ ip: string; pod: string } & Conditions)[]): EndpointSlice {
  return {
    metadata: { name },
    addressType: 'IPv4',
    ports: [{ name: 'http', port, protocol: 'TCP' }, { name: 'metrics', port: 9090, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating }, nodeName: 'node-1', zone: 'z1', targetRef: { kind: 'Pod', name: e.pod } })),
  };
}

/** A gateway whose one route goes to the Service `web`, discovered through the kubeconfig `file`. */
function gatewayOnWeb(file: string) {
  return startGateway(`listen: 127.0.0.1:0
log: { level: debug, access: false }
services:
  web:
    discovery: { type: kubernetes, kubeconfig: "${file}", port: http, watchTimeoutS: 30, requestTimeoutMs: 1000 }
routes:
  - { match: { path: / }, service: web }
`);
}

async function kubeconfig(dir: string, server: string): Promise<string> {
  const file = join(dir, 'kubeconfig');
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  await writeFile(file, `apiVersion: v1
kind: Config
current-context: test
clusters:
  - name: standin
    cluster: { server: "${server}" }
users:
  - name: gateway
    user: { tokenFile: token }
contexts:
  - name: test
    context: { cluster: standin, user: gateway, namespace: shop }
`);
  return file;
}

t.test('EndpointSlice endpoints: ready (or unset) only, the named port, several ports need a name', async (t) => {
  const s = slice('web-1', 8080, [{ ip: '10.0.0.1', ready: true, pod: 'a' }, { ip: '10.0.0.2', ready: false, pod: 'b' }, { ip: '10.0.0.3', ready: null, pod: 'c' }]);
  t.same(sliceEndpoints(s, 'http', 'http').ready.map((e) => e.address), ['http://10.0.0.1:8080', 'http://10.0.0.3:8080']);
  t.same(sliceEndpoints(s, 9090, 'https').ready.map((e) => e.address), ['https://10.0.0.1:9090', 'https://10.0.0.3:9090']);
  t.same(sliceEndpoints(s, 'http', 'http').ready[0]?.metadata, { node: 'node-1', zone: 'z1', pod: 'a' });
  t.throws(() => sliceEndpoints(s, undefined, 'http'), /has 2 TCP ports \(http, metrics\); set the port option/);
  t.throws(() => sliceEndpoints(s, 'grpc', 'http'), /no TCP port "grpc"/);
  t.same(sliceEndpoints({ ...s, addressType: 'IPv6', endpoints: [{ addresses: ['fd00::1'] }] }, 'http', 'http').ready.map((e) => e.address), ['http://[fd00::1]:8080']);
});

t.test('EndpointSlice conditions: terminating endpoints that still serve are used only when no endpoint is ready (kube-proxy)', async (t) => {
  const s = slice('web-1', 8080, [
    { ip: '10.0.0.1', ready: false, serving: true, terminating: true, pod: 'old-1' },
    { ip: '10.0.0.2', ready: false, serving: false, terminating: true, pod: 'old-2' },
    { ip: '10.0.0.3', ready: false, serving: null, terminating: true, pod: 'old-3' },
    { ip: '10.0.0.4', ready: false, serving: false, terminating: false, pod: 'new-1' },
  ]);
  const addresses = (slices: EndpointSlice[]) => serviceEndpoints(slices.map((x) => sliceEndpoints(x, 'http', 'http'))).map((e) => e.address);
  t.same(addresses([s]), ['http://10.0.0.1:8080', 'http://10.0.0.3:8080'], 'none ready: the serving terminating ones (serving unset counts as serving)');
  const ready = slice('web-2', 8080, [{ ip: '10.0.0.5', ready: true, pod: 'new-2' }]);
  t.same(addresses([s, ready]), ['http://10.0.0.5:8080'], 'one ready endpoint in any slice: only the ready ones');
  t.same(addresses([slice('web-3', 8080, [{ ip: '10.0.0.6', ready: false, serving: true, pod: 'starting' }])]), [], 'serving but not terminating and not ready: left out');
});

t.test('in-cluster access reads the mounted service account; kubeconfig auth-provider users are refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-sa-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'token'), 'tok-1\n');
  await writeFile(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\n');
  await writeFile(join(dir, 'namespace'), 'payments\n');
  const a = inClusterAccess({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, dir);
  t.equal(a.server, 'https://10.96.0.1:443');
  t.equal(a.namespace, 'payments');
  const headers = async () => (await a.credentials(AbortSignal.timeout(1000))).headers;
  t.same(await headers(), { authorization: 'Bearer tok-1' });
  await writeFile(join(dir, 'token'), 'tok-2\n');
  t.same(await headers(), { authorization: 'Bearer tok-2' }, 'a rotated token is read at the next request');
  t.throws(() => inClusterAccess({}, dir), /not in a cluster/);
  const kc = join(dir, 'kc');
  await writeFile(kc, 'current-context: c\ncontexts: [{ name: c, context: { cluster: k, user: u } }]\nclusters: [{ name: k, cluster: { server: "https://k:6443" } }]\nusers: [{ name: u, user: { auth-provider: { name: gcp } } }]\n');
  t.throws(() => kubeconfigAccess(kc, undefined), /user "u" uses an auth-provider, which the gateway does not run; use an exec credential plugin or a token/);
  await writeFile(kc, 'current-context: c\ncontexts: [{ name: c, context: { cluster: k, user: u } }]\nclusters: [{ name: k, cluster: { server: "https://k:6443" } }]\nusers: [{ name: u, user: { exec: { apiVersion: client.authentication.k8s.io/v1alpha1, command: aws } } }]\n');
  t.throws(() => kubeconfigAccess(kc, undefined), /exec apiVersion "client.authentication.k8s.io\/v1alpha1" is not supported/);
});

t.test('kubernetes (stand-in API server): list then watch; readiness and slice changes move traffic; watches resume from resourceVersion', async (t) => {
  const k8s = await startKubernetesStandIn(TOKEN);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-kube-'));
  const [a, b, c] = await Promise.all([startCountingUpstream('127.0.0.2'), startCountingUpstream('127.0.0.3'), startCountingUpstream('127.0.0.4')]) as [CountingUpstream, CountingUpstream, CountingUpstream];
  // Pods of one Service share the port; the upstreams got free ports, so each slice carries its own.
  k8s.apply(slice('web-a', a.port, [{ ip: '127.0.0.2', ready: true, pod: 'a' }]), 'web');
  k8s.apply(slice('web-b', b.port, [{ ip: '127.0.0.3', ready: false, pod: 'b' }]), 'web');
  k8s.apply(slice('other', c.port, [{ ip: '127.0.0.4', ready: true, pod: 'x' }]), 'other');
  const file = await kubeconfig(dir, k8s.url);
  const gw = await gatewayOnWeb(file);
  t.teardown(async () => { await gw.close(); await k8s.close(); await Promise.all([a, b, c].map((u) => u.close())); await rm(dir, { recursive: true, force: true }); });
  const pool = gw.gateway.current().services.get('web')!.pool;
  t.same(pool.endpoints.map((e) => e.address), [a.address], 'ready endpoints of this Service only');
  t.match(k8s.requests[0], /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/shop\/endpointslices\?labelSelector=kubernetes\.io%2Fservice-name%3Dweb$/, 'the namespace comes from the kubeconfig context');
  await waitFor(() => k8s.requests.length >= 2, 2000, 'a watch');
  t.match(k8s.requests[1], /&watch=true&allowWatchBookmarks=true&resourceVersion=103&timeoutSeconds=30$/, 'watching from the listed resourceVersion');

  const readyAt = Date.now();
  k8s.apply(slice('web-b', b.port, [{ ip: '127.0.0.3', ready: true, pod: 'b' }]), 'web');
  await waitFor(() => pool.endpoints.length === 2, 2000, 'pod b ready');
  t.pass(`a pod turning ready is routed to ${Date.now() - readyAt} ms later`);
  for (let i = 0; i < 4; i++) t.equal((await fetch(`${gw.url}/`)).status, 200);
  t.equal(b.hits(), 2);

  k8s.endWatches();
  await waitFor(() => k8s.requests.length >= 3, 2000, 'a new watch');
  t.match(k8s.requests[2], /&watch=true&.*resourceVersion=104&/, 'after the server ended the watch: resumed from the last version, no new list');
  k8s.remove('web-a');
  await waitFor(() => pool.endpoints.length === 1, 2000, 'slice deleted');
  t.equal(pool.endpoints[0]?.address, b.address);

  k8s.apply(slice('web-a', a.port, [{ ip: '127.0.0.2', ready: true, pod: 'a2' }]), 'web');
  await waitFor(() => pool.endpoints.length === 2, 2000, 'slice back');
  // A change the open watch never saw, then compaction: re-watching from the last seen version is 410 Gone.
  k8s.apply(slice('web-c', c.port, [{ ip: '127.0.0.4', ready: true, pod: 'c' }]), 'web', true);
  k8s.compact();
  k8s.endWatches();
  const lists = () => k8s.requests.filter((r) => !r.includes('watch=true')).length;
  await waitFor(() => lists() === 2, 3000, 'a new list after 410 Gone');
  await waitFor(() => pool.endpoints.length === 3, 2000, 'the missed change, from the new list');
  t.pass('a watch from a compacted resourceVersion (410 Gone) lists again and finds the change it missed');
  t.equal(pool.status.up, true);
  t.ok(gw.logs.some((l) => /410 Gone/.test(String(l.msg))));

  k8s.failWith(503);
  await waitFor(() => !pool.status.up, 3000, 'down');
  // The open watch is cut first; the re-watches then get the 503.
  await waitFor(() => /answered 503/.test(pool.status.lastError ?? ''), 3000, 'a 503 from the re-watch');
  t.match(pool.status.lastError, /answered 503/);
  t.equal((await fetch(`${gw.url}/`)).status, 200, 'still serving the last endpoints');
  t.equal(pool.endpoints.length, 3);
  k8s.failWith(null);
  await waitFor(() => pool.status.up, 5000, 'up again');
});

t.test('kubernetes (stand-in API server): a rollout whose pods all terminate keeps serving on them until a new pod is ready', async (t) => {
  const k8s = await startKubernetesStandIn(TOKEN);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-kube-'));
  const [a, b] = await Promise.all([startCountingUpstream('127.0.0.2'), startCountingUpstream('127.0.0.3')]) as [CountingUpstream, CountingUpstream];
  k8s.apply(slice('web-a', a.port, [{ ip: '127.0.0.2', ready: true, serving: true, terminating: false, pod: 'old' }]), 'web');
  const file = await kubeconfig(dir, k8s.url);
  const gw = await gatewayOnWeb(file);
  t.teardown(async () => { await gw.close(); await k8s.close(); await a.close(); await b.close(); await rm(dir, { recursive: true, force: true }); });
  const pool = gw.gateway.current().services.get('web')!.pool;
  t.same(pool.endpoints.map((e) => e.address), [a.address]);

  // The old pod starts terminating (still serving through its grace period); the new pod is not ready yet.
  let updates = 0;
  t.teardown(pool.onUpdate(() => { updates++; }));
  await waitFor(() => k8s.requests.length >= 2, 2000, 'the watch');
  k8s.apply(slice('web-a', a.port, [{ ip: '127.0.0.2', ready: false, serving: true, terminating: true, pod: 'old' }]), 'web');
  k8s.apply(slice('web-b', b.port, [{ ip: '127.0.0.3', ready: false, serving: false, terminating: false, pod: 'new' }]), 'web');
  await waitFor(() => updates === 2, 2000, 'both slice events applied');
  t.same(pool.endpoints.map((e) => e.address), [a.address], 'no pod ready: the terminating pod that still serves stays');
  for (let i = 0; i < 3; i++) t.equal((await fetch(`${gw.url}/`)).status, 200, 'and answers');

  k8s.apply(slice('web-b', b.port, [{ ip: '127.0.0.3', ready: true, serving: true, terminating: false, pod: 'new' }]), 'web');
  await waitFor(() => pool.endpoints.length === 1 && pool.endpoints[0]?.address === b.address, 2000, 'the new pod only');
  t.pass('once a pod is ready, the terminating one is dropped');
  k8s.apply(slice('web-b', b.port, [{ ip: '127.0.0.3', ready: false, serving: false, terminating: true, pod: 'new' }]), 'web');
  k8s.apply(slice('web-a', a.port, [{ ip: '127.0.0.2', ready: false, serving: false, terminating: true, pod: 'old' }]), 'web');
  await waitFor(() => pool.endpoints.length === 0, 2000, 'nothing serving');
  t.equal((await fetch(`${gw.url}/`)).status, 503, 'terminating pods that no longer serve are not used');
});

t.test('kubernetes (stand-in API server): a kubeconfig user with an exec credential plugin', async (t) => {
  const k8s = await startKubernetesStandIn(TOKEN);
  const dir = await mkdtemp(join(tmpdir(), 'gantry-kube-'));
  const a = await startCountingUpstream('127.0.0.2');
  k8s.apply(slice('web-a', a.port, [{ ip: '127.0.0.2', ready: true, pod: 'a' }]), 'web');
  const script = await writeExecCredentialScript(dir, 'login');
  await writeFile(join(dir, 'kubeconfig'), `current-context: test
clusters: [{ name: standin, cluster: { server: "${k8s.url}" } }]
users:
  - name: sso
    user: { exec: { apiVersion: client.authentication.k8s.io/v1, command: ./login, interactiveMode: IfAvailable, env: [{ name: TEST_TOKEN, value: ${TOKEN} }] } }
contexts: [{ name: test, context: { cluster: standin, user: sso, namespace: shop } }]
`);
  const gw = await startGateway(`listen: 127.0.0.1:0
log: { level: debug, access: false }
services:
  web:
    discovery: { type: kubernetes, kubeconfig: "${join(dir, 'kubeconfig')}", port: http, watchTimeoutS: 30, requestTimeoutMs: 1000 }
routes:
  - { match: { path: / }, service: web }
`);
  t.teardown(async () => { await gw.close(); await k8s.close(); await a.close(); await rm(dir, { recursive: true, force: true }); });
  const pool = gw.gateway.current().services.get('web')!.pool;
  t.same(pool.endpoints.map((e) => e.address), [a.address], 'listed and watched with the token the plugin printed');
  await waitFor(() => k8s.requests.length >= 2, 2000, 'the watch');
  t.equal(await script.runs(), 1, 'one run for the list and the watch: the token has no expiry');
});
