import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { TimerList, TimerLists } from '../../gateway/resilience/timer-list.js';
import { waitFor } from '../helpers/capture-log.js';

t.test('timers fire in the order they were armed, and a cancelled one never fires', async (t) => {
  const fired: string[] = [];
  const list = new TimerList<string>(20, (s) => fired.push(s));
  list.start('a');
  const b = list.start('b');
  list.start('c');
  TimerList.cancel(b);
  TimerList.cancel(b);   // twice is harmless
  await waitFor(() => fired.length === 2);
  t.same(fired, ['a', 'c']);
});

t.test('cancelling the first timer leaves the next one due on time, not lost', async (t) => {
  const fired: string[] = [];
  const list = new TimerList<string>(30, (s) => fired.push(s));
  const first = list.start('first');
  await new Promise((r) => setTimeout(r, 10));
  list.start('second');
  TimerList.cancel(first);
  await waitFor(() => fired.length === 1);
  t.same(fired, ['second']);
});

t.test('lists are per duration; a fired timer can arm another on the same list', async (t) => {
  const fired: number[] = [];
  const lists: TimerLists<number> = new TimerLists((n) => { fired.push(n); if (n === 1) lists.start(10, 3); });
  lists.start(10, 1);
  lists.start(25, 2);
  await waitFor(() => fired.length === 3);
  t.same(fired.sort(), [1, 2, 3]);
});

t.test('a list whose timers were all cancelled does not keep the process alive', async (t) => {
  const module = fileURLToPath(new URL('../../gateway/resilience/timer-list.js', import.meta.url));
  const script = `import { TimerList } from ${JSON.stringify(module)};
    const list = new TimerList(60000, () => {});
    const a = list.start(1);
    TimerList.cancel(a);
    const b = list.start(2);   // armed again on the emptied list, then cancelled: still nothing holds the process
    TimerList.cancel(b);`;
  // Without the unref the child waits out the 60 s timer and is killed here.
  t.doesNotThrow(() => execFileSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }));
});
