import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { validatePluginOptions } from '../../gateway/config/schema-validator.js';
import { pluginContext, type LoadReport } from '../../gateway/plugin-api/index.js';
import { execScaler } from '../../plugins/scaling/exec.js';
import { captureLogger } from '../helpers/capture-logger.js';

const REPORT = { at: 1_700_000_000_000, current: 2, reason: 'demand: 2 → 5', readyEndpoints: 2, waiting: 0, resources: null } as unknown as LoadReport;

async function setup(t: { teardown(fn: () => unknown): void }, options: Record<string, unknown>) {
  const problems = validatePluginOptions(execScaler.optionsSchema, options, []);
  if (problems.length) throw new Error(JSON.stringify(problems));
  const abort = new AbortController();
  const scaler = execScaler.create(options as never, pluginContext(captureLogger().log, abort.signal, Date.now, process.cwd()));
  t.teardown(() => scaler.close());
  return scaler;
}

t.test('runs the scale command with the values filled in, and reads the count from the current command', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-exec-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const calls = join(dir, 'calls.log');
  const count = join(dir, 'count');
  await writeFile(count, '2\n');
  // A stand-in for `kubectl scale`: records its arguments, environment and stdin, and stores the new count.
  const scaler = await setup(t, {
    scale: `echo "scale {service} to {replicas} from {current} env=$GANTRY_SERVICE/$GANTRY_REPLICAS" >> ${calls}; cat >> ${calls}; echo >> ${calls}; echo {replicas} > ${count}`,
    current: ['/bin/sh', '-c', `cat ${count}`],
  });
  t.equal(await scaler.currentReplicas('web', AbortSignal.timeout(3000)), 2);
  await scaler.scale('web', 5, REPORT, AbortSignal.timeout(3000));
  t.equal(await scaler.currentReplicas('web', AbortSignal.timeout(3000)), 5);
  const [line, stdin] = (await readFile(calls, 'utf8')).split('\n');
  t.equal(line, 'scale web to 5 from 2 env=web/5');
  const decision = JSON.parse(stdin as string) as { service: string; desired: number; current: number; load: { reason: string } };
  t.same([decision.service, decision.desired, decision.current, decision.load.reason], ['web', 5, 2, 'demand: 2 → 5'], 'the decision arrives as JSON on stdin');
});

t.test('argv commands run without a shell: a value cannot inject anything', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-exec-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'args');
  const scaler = await setup(t, {
    scale: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.argv.slice(1)))`, 'deployment/{service}', '--replicas={replicas}'],
    current: ['echo', '1'],
  });
  await scaler.scale('api.v2', 3, REPORT, AbortSignal.timeout(3000));
  t.same(JSON.parse(await readFile(out, 'utf8')), ['deployment/api.v2', '--replicas=3']);
});

t.test('failures: non-zero exit with stderr, garbage output, timeout that kills the whole process group, abort', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-exec-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const late = join(dir, 'late');
  const failing = await setup(t, { scale: 'echo "error: deployments.apps \\"web\\" not found" >&2; exit 1 # {replicas}', current: 'echo three' });
  await t.rejects(failing.scale('web', 2, REPORT, AbortSignal.timeout(3000)), /command exited with code 1: error: deployments.apps "web" not found/);
  await t.rejects(failing.currentReplicas('web', AbortSignal.timeout(3000)), /printed "three", not a replica count/);

  const slow = await setup(t, { scale: `sleep 1; echo late > ${late} # {replicas}`, current: 'sleep 5; echo 1', timeoutMs: 200 });
  const started = Date.now();
  await t.rejects(slow.scale('web', 2, REPORT, AbortSignal.timeout(3000)), /timed out after 200 ms/);
  t.ok(Date.now() - started < 1000);
  const aborted = new AbortController();
  setTimeout(() => aborted.abort(), 100);
  await t.rejects(slow.currentReplicas('web', aborted.signal), /aborted/);
  await new Promise((r) => setTimeout(r, 1300));
  await t.rejects(readFile(late), { code: 'ENOENT' }, 'the shell and its children were killed: nothing ran after the timeout');
  await t.rejects((await setup(t, { scale: ['/nonexistent/kubectl', '{replicas}'], current: 'echo 1' })).scale('web', 1, REPORT, AbortSignal.timeout(3000)), /cannot run \/nonexistent\/kubectl/);
});
