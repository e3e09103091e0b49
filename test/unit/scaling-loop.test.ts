import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { parseRoutes } from '../../gateway/config/load-routes-file.js';
import { LoadRecorder } from '../../gateway/signals/load-recorder.js';
import { PluginRegistry, type LoadReport, type Scaler, type ScalerPlugin } from '../../gateway/plugin-api/index.js';
import { ScalingLoop } from '../../gateway/scaling/scaling-loop.js';
import { builtinPlugins } from '../../plugins/index.js';

/** A scaler that records its calls; each test sets how the orchestrator behaves. */
class FakeOrchestrator {
  replicas = 2;
  calls: string[] = [];
  created = 0;
  closed = 0;
  current: (signal: AbortSignal) => Promise<number> = async () => this.replicas;
  scaleImpl: (desired: number, signal: AbortSignal) => Promise<void> = async (desired) => { this.replicas = desired; };
  reports: LoadReport[] = [];

  plugin(): ScalerPlugin<{ tag?: string }> {
    return {
      kind: 'scaler', type: 'fake', optionsSchema: { type: 'object', properties: { tag: { type: 'string' } } },
      create: () => {
        this.created++;
        const scaler: Scaler = {
          currentReplicas: (service, signal) => { this.calls.push(`current ${service}`); return this.current(signal); },
          scale: (service, desired, load, signal) => { this.calls.push(`scale ${service} ${desired}`); this.reports.push(load); return this.scaleImpl(desired, signal); },
          close: async () => { this.closed++; },
        };
        return scaler;
      },
    };
  }
}

function yaml(scaling: string): string {
  return `services:
  app:
    discovery: { type: static, endpoints: ["http://127.0.0.1:1"] }
    scaling: { scaler: { type: fake }, min: 1, ${scaling.includes('max:') ? '' : 'max: 10, '}${scaling} }
routes:
  - match: { path: / }
    service: app
`;
}

function setup(t: { teardown(fn: () => unknown): void }, scaling = 'callTimeoutMs: 200, backoff: { initialMs: 1000, maxMs: 8000 }') {
  const fake = new FakeOrchestrator();
  const plugins = new PluginRegistry(builtinPlugins, [fake.plugin()]);
  let now = 1_700_000_000_000;
  let mono = 1_000_000;
  const load = new LoadRecorder(() => mono);
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug', base: undefined }, new Writable({ write(c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l) logs.push(JSON.parse(l)); cb(); } }));
  const decisions: { service: string; current: number; desired: number; reason: string }[] = [];
  const replicas: [string, number, number][] = [];
  const loop = new ScalingLoop({
    plugins, load, log, readyEndpoints: () => fake.replicas, now: () => now, random: () => 1,
    observer: { scalingDecision: (d) => decisions.push(d), replicas: (s, d, c) => replicas.push([s, d, c]) },
  });
  t.teardown(() => loop.close());
  const config = parseRoutes(yaml(scaling), 'routes.yaml', plugins);
  loop.sync(config);
  /** Puts `n` requests in flight for the whole stable window (and moves both clocks past it). */
  const inFlight = (n: number) => {
    for (let i = 0; i < n; i++) load.started('app');
    mono += 61_000;
    now += 61_000;
  };
  return { fake, loop, load, logs, decisions, replicas, plugins, advance: (ms: number) => { now += ms; mono += ms; }, inFlight, config };
}

t.test('reads the current count, decides, scales, and keeps the decision with its reason', async (t) => {
  const { fake, loop, inFlight, decisions, replicas, logs } = setup(t);
  inFlight(35);   // 1.75× the capacity of 2 replicas: below the panic threshold
  await loop.evaluate('app');
  t.same(fake.calls, ['current app', 'scale app 4'], 'one read, one scale: 35 in flight / 10 per replica → 4');
  t.equal(fake.replicas, 4);
  const [d] = loop.recentDecisions('app');
  t.equal(d?.outcome, 'applied');
  t.equal(d?.cause, 'demand');
  t.match(d?.reason, /^demand: 2 → 4/);
  t.equal(d?.load.stable.inFlightMean, 35);
  t.same(decisions.map((x) => [x.current, x.desired]), [[2, 4]]);
  t.same(replicas, [['app', 4, 2]]);
  t.equal(fake.reports[0]?.current, 2, 'the scaler gets the decision context');
  t.match(fake.reports[0]?.reason, /demand/);
  t.ok(logs.some((l) => l.event === 'scaled' && l.from === 2 && l.to === 4), 'logged with its reason');
  await loop.evaluate('app');
  t.same(fake.calls, ['current app', 'scale app 4'], 'steady: no call (the count is re-read only every syncMs)');
  t.same(loop.status()[0], {
    service: 'app', scaler: 'fake', current: 4, desired: 4, ready: 4, min: 1, max: 10, panic: false, lastCause: 'within-tolerance',
    lastReason: loop.status()[0]?.lastReason, consecutiveFailures: 0, lastError: null, backoffUntil: 0,
  });
});

t.test('an orchestrator that hangs: one call in flight, a timeout, backoff, and forwarding never waits', async (t) => {
  const { fake, loop, inFlight, advance, logs } = setup(t);
  fake.scaleImpl = () => new Promise(() => {});   // ignores its signal on purpose
  inFlight(55);
  const first = loop.evaluate('app');
  t.equal(loop.evaluate('app'), first, 'a second evaluation joins the call in flight');
  loop.wake('app');
  const started = Date.now();
  await first;
  t.ok(Date.now() - started < 2000, 'the 200 ms call timeout ended the wait');
  t.same(fake.calls.filter((c) => c.startsWith('scale')), ['scale app 6'], 'exactly one scale call');
  const [d] = loop.recentDecisions('app');
  t.equal(d?.outcome, 'failed');
  t.match(d?.error, /scaling to 6/);
  const status = loop.status()[0];
  t.equal(status?.consecutiveFailures, 1);
  t.equal(status?.backoffUntil, (status?.backoffUntil ?? 0), 'backing off');
  t.ok(logs.some((l) => l.event === 'scaler-failed'), 'logged');
  await loop.evaluate('app');
  t.equal(fake.calls.filter((c) => c.startsWith('scale')).length, 1, 'no call during the backoff (1 s with this jitter)');
  advance(1000);
  fake.scaleImpl = async (desired) => { fake.replicas = desired; };
  await loop.evaluate('app');
  t.equal(fake.calls.filter((c) => c.startsWith('scale')).length, 2, 'tried again after the backoff');
  t.equal(fake.replicas, 6);
  t.equal(loop.status()[0]?.consecutiveFailures, 0);
  t.ok(logs.some((l) => l.event === 'scaler-recovered'));
});

t.test('an orchestrator that is down: no decision without a count, backoff doubles, logs stay quiet', async (t) => {
  const { fake, loop, inFlight, advance, logs } = setup(t);
  fake.current = async () => { throw new Error('connect ECONNREFUSED'); };
  inFlight(55);
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    await loop.evaluate('app');
    const s = loop.status()[0];
    delays.push((s?.backoffUntil ?? 0) - (1_700_000_000_000 + 61_000 + delays.reduce((a, b) => a + b, 0)));
    advance(delays[delays.length - 1] as number);
  }
  t.same(delays, [1000, 2000, 4000, 8000, 8000], 'full jitter (random 1 here) doubling up to maxMs');
  t.notOk(fake.calls.some((c) => c.startsWith('scale')), 'never scales without knowing the current count');
  t.equal(logs.filter((l) => l.event === 'scaler-failed').length, 1, 'one warning, not one per attempt');
  t.match(loop.status()[0]?.lastError, /reading the current replica count: connect ECONNREFUSED/);
});

t.test('a reload that changes the scaler gets a new instance; dropping scaling closes it', async (t) => {
  const { fake, loop, plugins } = setup(t);
  t.equal(fake.created, 1);
  loop.sync(parseRoutes(yaml('callTimeoutMs: 200'), 'routes.yaml', plugins));
  t.equal(fake.created, 1, 'same scaler options: same instance');
  loop.sync(parseRoutes(yaml('callTimeoutMs: 200').replace('{ type: fake }', '{ type: fake, tag: b }'), 'routes.yaml', plugins));
  await new Promise((r) => setImmediate(r));
  t.equal(fake.created, 2);
  t.equal(fake.closed, 1, 'the old instance is closed');
  loop.sync(parseRoutes(yaml('').replace(/\n    scaling: .*\n/, '\n'), 'routes.yaml', plugins));
  await new Promise((r) => setImmediate(r));
  t.equal(fake.closed, 2);
  t.same(loop.status(), []);
});

t.test('held causes are recorded once when they start; history is bounded', async (t) => {
  const { fake, loop, inFlight } = setup(t, 'max: 3, callTimeoutMs: 200');
  inFlight(100);
  await loop.evaluate('app');
  t.equal(fake.replicas, 3);
  t.equal(loop.recentDecisions('app')[0]?.cause, 'max');
  await loop.evaluate('app');
  await loop.evaluate('app');
  const held = loop.recentDecisions('app').filter((d) => d.outcome === 'held');
  t.equal(held.length, 1, 'capped at max: kept once, not every tick');
  t.equal(loop.recentDecisions().length, loop.recentDecisions('app').length);
});

t.test('a schedule raises the floor from its lead time, and demand scales above it', async (t) => {
  const { fake, loop, advance } = setup(t, `callTimeoutMs: 200, scaleDown: { stabilizationWindowMs: 0 }, schedules: [{ cron: "0 9 * * *", timezone: UTC, durationMinutes: 60, min: 5, leadMs: 120000 }]`);
  // The fake clock starts at 2023-11-14T22:13:20Z; move it to 08:57:00Z the next day (3 min before the window).
  advance(Date.parse('2023-11-15T08:57:00Z') - 1_700_000_000_000);
  fake.replicas = 1;
  await loop.evaluate('app');
  t.equal(fake.replicas, 1, 'before the lead time: min 1');
  advance(60_000);   // 08:58: inside the 2-minute lead
  await loop.evaluate('app');
  t.equal(fake.replicas, 5, 'pre-warmed to the schedule floor');
  t.equal(loop.recentDecisions('app').at(-1)?.cause, 'schedule');
  t.match(loop.recentDecisions('app').at(-1)?.reason, /schedule #0 \(0 9 \* \* \*\) floor 5/);
  advance(62 * 60_000);   // 10:00: the window has closed
  await loop.evaluate('app');
  t.equal(fake.replicas, 1, 'back to min once the window is over');
});
