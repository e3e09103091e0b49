import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { EndpointSlice } from '../../plugins/discovery/kubernetes.js';
import { waitFor } from '../helpers/capture-log.js';
import { startConsulStandIn } from '../helpers/consul-standin.js';
import { startCountingUpstream, type CountingUpstream } from '../helpers/counting-upstream.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { startKubernetesStandIn } from '../helpers/kubernetes-standin.js';
import { listenOnLoopback } from '../helpers/listen-loopback.js';
import { makeTestCertificates } from '../helpers/test-certificates.js';

const CONSUL_TOKEN = 'consul-acl-token';
const KUBE_TOKEN = 'kube-sa-token';
const HOOK_SECRET = 'webhook-secret-0123456789';

t.test('relative paths in plugin options start at the routes file, whatever the working directory', async (t) => {
  const certs = await makeTestCertificates();
  const elsewhere = await mkdtemp(join(tmpdir(), 'gantry-cwd-'));
  const [a, b] = await Promise.all([startCountingUpstream(), startCountingUpstream('127.0.0.2')]) as [CountingUpstream, CountingUpstream];
  const consul = await startConsulStandIn(CONSUL_TOKEN, { cert: await certs.read('serverCert'), key: await certs.read('serverKey'), ca: await certs.read('ca') });
  consul.setInstances('users', [{
    Node: { Node: 'n1', Address: '127.0.0.1' }, Service: { ID: 'users-1', Service: 'users', Address: '127.0.0.1', Port: a.port }, Checks: [{ Status: 'passing' }],
  }]);
  const k8s = await startKubernetesStandIn(KUBE_TOKEN);
  const slice: EndpointSlice = { metadata: { name: 'web-1' }, addressType: 'IPv4', ports: [{ name: 'http', port: b.port }], endpoints: [{ addresses: ['127.0.0.2'] }] };
  k8s.apply(slice, 'web');
  // A webhook receiver that checks the signature, as a user's hook would.
  const signed: string[] = [];
  const hook = await listenOnLoopback(http.createServer((req, res) => {
    const ts = String(req.headers['x-gantry-timestamp']);
    req.resume().on('end', () => {
      const ok = req.method === 'GET' && req.headers['x-gantry-signature'] === `sha256=${createHmac('sha256', HOOK_SECRET).update(`${ts}.`).digest('hex')}`;
      if (ok) signed.push(req.url ?? '');
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? '{"replicas":1}' : '{}');
    });
  }));
  t.teardown(async () => {
    await consul.close(); await k8s.close(); await hook.close(); await a.close(); await b.close();
    await certs.remove(); await rm(elsewhere, { recursive: true, force: true });
  });

  const gw = await spawnGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: info, access: false }
services:
  users:
    discovery:
      type: consul
      address: "${consul.url}"
      token: ${CONSUL_TOKEN}
      tls: { caFile: tls/ca.pem, certFile: tls/client.pem, keyFile: tls/client-key.pem }
    scaling:
      scaler: { type: webhook, url: "${hook.url}/scale", secretFile: secrets/hook-secret }
      min: 1
      intervalMs: 200
      hold: { timeoutMs: 500 }
  web:
    discovery: { type: kubernetes, kubeconfig: kube/config, port: http }
routes:
  - { match: { path: /users }, service: users }
  - { match: { path: /web }, service: web }
`, [], {
    cwd: elsewhere,
    files: {
      'tls/ca.pem': await certs.read('ca'), 'tls/client.pem': await certs.read('clientCert'), 'tls/client-key.pem': await certs.read('clientKey'),
      'secrets/hook-secret': `${HOOK_SECRET}\n`,
      // The kubeconfig's own relative paths start at the kubeconfig's directory, as kubectl reads them.
      'kube/config': `current-context: c
clusters: [{ name: k, cluster: { server: "${k8s.url}" } }]
users: [{ name: u, user: { tokenFile: sa-token } }]
contexts: [{ name: c, context: { cluster: k, user: u, namespace: shop } }]
`,
      'kube/sa-token': KUBE_TOKEN,
    },
  });
  t.teardown(() => gw.kill());
  const get = async (path: string) => (await fetch(`http://127.0.0.1:${gw.port}${path}`)).status;
  t.equal(await get('/users'), 200, 'Consul over mutual TLS with tls/*.pem beside routes.yaml');
  t.equal(a.hits(), 1);
  t.equal(await get('/web'), 200, 'Kubernetes through kube/config beside routes.yaml, and its token beside it');
  t.equal(b.hits(), 1);
  await waitFor(() => signed.length > 0, 10_000, 'a signed webhook call');
  t.match(signed[0], /^\/scale\?service=users$/, 'the webhook secret read from secrets/hook-secret beside routes.yaml');
  t.notOk(gw.logs.some((l) => l.event === 'discovery-down' || l.event === 'scaler-failed'), 'no source failed');
});
