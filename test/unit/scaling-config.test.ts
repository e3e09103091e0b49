import t from 'tap';
import { configProblems } from '../helpers/config-problems.js';
import { parseRoutes } from '../../gateway/config/load-routes-file.js';
import { createBuiltinRegistry } from '../../plugins/index.js';

const plugins = createBuiltinRegistry();

const problems = configProblems;

const routes = `routes:
  - match: { path: / }
    service: app
`;

function withScaling(scaling: string, discovery = '{ type: scaler }'): string {
  return `services:
  app:
    discovery: ${discovery}
    scaling:
${scaling.split('\n').map((l) => `      ${l}`).join('\n')}
${routes}`;
}

t.test('a scaling block gets HPA-like defaults and the scaler options their own', async (t) => {
  const c = parseRoutes(withScaling('scaler: { type: process, command: [node, app.js] }'), 'routes.yaml', plugins);
  const s = c.services.get('app')?.scaling;
  t.ok(s);
  t.same(s?.scaler.options, {
    command: ['node', 'app.js'], env: {}, host: '127.0.0.1', portEnv: 'PORT', healthPath: '/healthz', healthIntervalMs: 100,
    startTimeoutMs: 30000, stopGraceMs: 10000, restartBackoff: { initialMs: 500, maxMs: 30000 }, stableAfterMs: 30000, output: 'log',
  });
  t.equal(s?.policy.min, 1);
  t.equal(s?.policy.max, 10);
  t.same(s?.policy.targets, { inFlight: 10 });
  t.equal(s?.policy.tolerance, 0.1);
  t.equal(s?.policy.stableWindowMs, 60000);
  t.equal(s?.panicWindowMs, 6000);
  t.equal(s?.policy.panicThreshold, 2);
  t.same(s?.policy.scaleUp, { stabilizationWindowMs: 0, policies: [{ type: 'percent', value: 100, periodMs: 15000 }, { type: 'replicas', value: 4, periodMs: 15000 }], selectPolicy: 'max' });
  t.same(s?.policy.scaleDown, { stabilizationWindowMs: 30000, policies: [{ type: 'percent', value: 100, periodMs: 15000 }], selectPolicy: 'max' });
  t.same(s?.hold, { maxQueue: 1000, timeoutMs: 30000 });
  t.equal(s?.callTimeoutMs, 5000);
  t.equal(c.services.get('app')?.discovery.type, 'scaler');
  const other = parseRoutes(withScaling('scaler: { type: process, command: [node, other.js] }'), 'routes.yaml', plugins);
  t.not(other.services.get('app')?.discovery.key, c.services.get('app')?.discovery.key, 'new scaler options: a new pool and a new set of instances');
  t.equal(c.services.get('app')?.scaling !== null, true);
  const plain = parseRoutes(`services:\n  app:\n    discovery: { type: static, endpoints: ["http://127.0.0.1:1"] }\n${routes}`, 'routes.yaml', plugins);
  t.equal(plain.services.get('app')?.scaling, null, 'no block: not scaled');
});

t.test('every scaling mistake is reported with file:line:col', async (t) => {
  t.same(problems(withScaling('scaler: { type: nomad }')), [
    'routes.yaml:3:24: services.app.discovery.type: type scaler needs a scaling.scaler that runs the instances (type: process)',
    'routes.yaml:5:23: services.app.scaling.scaler.type: unknown scaler type "nomad" (known: process, exec, webhook, kubernetes)',
  ]);
  t.same(problems(withScaling('scaler: { type: process, command: [x] }\nmin: 5\nmax: 3')), ['routes.yaml:6:12: services.app.scaling.min: must not exceed max (3)']);
  t.same(problems(withScaling(`scaler: { type: process, command: [x] }
schedules:
  - { cron: "0 25 * * *", durationMinutes: 60, min: 2 }
  - { cron: "0 8 * * *", timezone: Europe/Atlantis, durationMinutes: 60, min: 2 }
  - { cron: "0 8 * * *", durationMinutes: 60, min: 50 }`)), [
    'routes.yaml:7:19: services.app.scaling.schedules[0].cron: hour: 25 is outside 0-23',
    'routes.yaml:8:42: services.app.scaling.schedules[1].timezone: unknown time zone "Europe/Atlantis"',
    'routes.yaml:9:58: services.app.scaling.schedules[2].min: must not exceed max (10)',
  ]);
  t.same(problems(withScaling('scaler: { type: process }')), ['routes.yaml:5:15: services.app.scaling.scaler: missing required field "command"']);
  t.same(problems(withScaling('scaler: { type: process, command: [x] }\ntarget: { concurrency: 3 }')), ['routes.yaml:6:17: services.app.scaling.target.concurrency: unknown field "concurrency"']);
  t.same(problems(withScaling('scaler: { type: process, command: [x] }', '{ type: static, endpoints: ["http://127.0.0.1:1"] }')), [
    'routes.yaml:3:24: services.app.discovery.type: the process scaler runs the instances itself: use discovery: { type: scaler }',
  ]);
  t.same(problems(withScaling('scaler: { type: exec, scale: "kubectl scale deploy/app", current: "echo 1" }', '{ type: static, endpoints: ["http://127.0.0.1:1"] }')), [
    'routes.yaml:5:36: services.app.scaling.scaler.scale: must use {replicas} (the count to scale to)',
  ]);
  t.same(problems(withScaling('scaler: { type: webhook, url: "http://127.0.0.1:1/scale" }', '{ type: static, endpoints: ["http://127.0.0.1:1"] }')), [
    'routes.yaml:5:15: services.app.scaling.scaler: set exactly one of secret, secretEnv, secretFile (found none): calls are signed',
  ]);
  t.same(problems(withScaling('scaler: { type: process, command: [x] }\npanicThreshold: 1\nwindows: { stableMs: 5000, panicMs: 6000 }')), [
    'routes.yaml:6:23: services.app.scaling.panicThreshold: must be above 1 (2 = panic at twice the ready capacity), or 0 to turn panic off',
    'routes.yaml:7:43: services.app.scaling.windows.panicMs: must not exceed windows.stableMs (5000)',
  ]);
});

t.test('in a fleet the process scaler is refused (its instances would run on every gateway\'s host); exec is fine', async (t) => {
  const fleet = 'fleet: { name: edge, etcd: { endpoints: ["http://127.0.0.1:2379"] } }\n';
  t.same(problems(fleet + withScaling('scaler: { type: process, command: [node, app.js] }')), [
    'routes.yaml:6:23: services.app.scaling.scaler.type: the process scaler runs instances on this gateway\'s own host and cannot serve a fleet (fleet:): use exec, webhook or kubernetes',
  ]);
  const exec = parseRoutes(fleet + withScaling('scaler: { type: exec, scale: "true {replicas}", current: "echo 1" }', '{ type: static, endpoints: ["http://127.0.0.1:1"] }'), 'routes.yaml', plugins);
  t.match(exec.fleet, { name: 'edge', leaseTtlS: 5, etcd: { endpoints: ['http://127.0.0.1:2379'], dialTimeoutMs: 3000 } });
  t.match(exec.fleet?.instance, /-\d+$/, 'the instance defaults to hostname-pid');
  t.same(problems(`fleet: { name: "a/b", etcd: { endpoints: [] }, leaseTtlS: 0 }\n` + withScaling('scaler: { type: exec, scale: "true", current: "echo 1" }', '{ type: static, endpoints: ["http://127.0.0.1:1"] }')).length, 3, 'name, endpoints and leaseTtlS checked');
});
