import { mkdtemp, readFile, rm } from 'node:fs/promises';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startCountingUpstream } from '../helpers/counting-upstream.js';
import { spawnGateway } from '../helpers/gateway-process.js';

const RECORDER = new URL('../fixtures/record-loaded-modules.js', import.meta.url).href;
const hasHooks = typeof (module as unknown as { registerHooks?: unknown }).registerHooks === 'function';

t.test('a gateway whose config uses only static discovery loads neither etcd3 (gRPC, protobufjs) nor Ajv\'s compiler', { skip: !hasHooks && 'module.registerHooks needs Node 22.15 or later' }, async (t) => {
  const upstream = await startCountingUpstream();
  t.teardown(() => upstream.close());
  const dir = await mkdtemp(join(tmpdir(), 'gantry-modules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const list = join(dir, 'modules.txt');
  const gw = await spawnGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
services:
  app:
    discovery: { type: static, endpoints: ["${upstream.address}"] }
routes:
  - { match: { path: /app }, service: app }
`, [], { nodeArgs: ['--import', RECORDER], env: { GANTRY_TEST_MODULE_LIST: list } });
  t.teardown(() => gw.kill());
  // A request and a scrape through, so the modules of the request path and the admin API are loaded too.
  t.equal((await fetch(`http://127.0.0.1:${gw.port}/app`)).status, 200);
  t.equal((await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`)).status, 200);
  const urls = (await readFile(list, 'utf8')).split('\n').filter(Boolean);
  const loaded = (pkg: string) => urls.filter((u) => u.includes(`/node_modules/${pkg}/`));
  t.not(loaded('undici').length, 0, 'the recorder saw the modules the gateway uses');
  t.same(loaded('etcd3'), [], 'etcd3 is imported by the etcd plugin on its first watch only');
  t.same(loaded('@grpc/grpc-js'), []);
  t.same(loaded('protobufjs'), []);
  t.same(loaded('ajv').filter((u) => !u.includes('/ajv/dist/runtime/')), [], 'the schemas were compiled at build time');
  t.same(loaded('@opentelemetry/sdk-trace-base'), [], 'the OpenTelemetry SDK is imported only when tracing.spans is on');
  t.same(loaded('@opentelemetry/exporter-trace-otlp-proto'), []);
  t.same(urls.filter((u) => u.endsWith('/gateway/tracing/otel-tracer.js')), []);
});
