import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import t from 'tap';
import { LOOP_RESOLUTION_MS, LoopMonitors, ReloadTimer } from '../../gateway/runtime/reload-timer.js';

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* hold the event loop */ }
}

t.test('sees a block at the very start of the reload and one just before it finishes', async (t) => {
  const first = await ReloadTimer.start();
  block(100);
  first.lap('parse');
  t.ok((await first.finish()).loopDelayMaxMs >= 80, 'a block right after start');

  const last = await ReloadTimer.start();
  await new Promise((resolve) => setTimeout(resolve, 30));
  block(100);
  const timing = await last.finish();
  t.ok(timing.loopDelayMaxMs >= 80, `a block right before finish (${timing.loopDelayMaxMs} ms)`);
  // The 100 ms block is certain; the 30 ms timer can fire a little early by performance.now() (libuv's cached loop time).
  t.ok(timing.totalMs >= 100, `total ${timing.totalMs} ms covers the block`);
});

t.test('phases in the order they ran; durations from another thread are added; finish answers once', async (t) => {
  const timer = await ReloadTimer.start();
  timer.lap('read');
  timer.record('parse', 12.34);
  timer.record('parse', 1);
  timer.lap('build');
  const timing = timer.finish();
  t.same(Object.keys((await timing).phasesMs), ['read', 'parse', 'build']);
  t.equal((await timing).phasesMs.parse, 13.3);
  t.equal(timer.finish(), timing, 'the same result');
});

t.test('reload after reload times with one event-loop monitor; a second is made only while two overlap', async (t) => {
  const made: IntervalHistogram[] = [];
  const monitors = new LoopMonitors(() => {
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    made.push(loop);
    return loop;
  });
  for (let i = 0; i < 20; i++) {
    const timer = await ReloadTimer.start(monitors);
    timer.lap('build');
    await timer.finish();
  }
  t.equal(made.length, 1, 'twenty reloads, one monitor');

  const [a, b] = await Promise.all([ReloadTimer.start(monitors), ReloadTimer.start(monitors)]);
  t.equal(made.length, 2, 'two timing at once: two monitors');
  await Promise.all([a.finish(), b.finish()]);
  for (let i = 0; i < 5; i++) await (await ReloadTimer.start(monitors)).finish();
  t.equal(made.length, 2, 'and no more after');
});

t.test('a monitor taken again starts empty', async (t) => {
  const monitors = new LoopMonitors();
  const loop = monitors.take();
  await new Promise((resolve) => setTimeout(resolve, 5 * LOOP_RESOLUTION_MS));
  t.ok(loop.count > 0, 'it recorded ticks');
  monitors.give(loop);
  const again = monitors.take();
  t.equal(again, loop, 'the same monitor');
  t.equal(again.count, 0, 'without the previous reload\'s samples');
  monitors.give(again);
});
