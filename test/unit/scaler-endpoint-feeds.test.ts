import t from 'tap';
import { createBuiltinRegistry } from '../../plugins/index.js';
import { ScalerEndpointFeeds } from '../../gateway/cluster/scaler-endpoint-feeds.js';
import { parseRoutes } from '../../gateway/config/load-routes-file.js';
import type { Discovery, DiscoveryUpdate, Endpoint } from '../../gateway/plugin-api/index.js';
import { PoolManager } from '../../gateway/upstream/pool-manager.js';
import { captureLogger } from '../helpers/capture-logger.js';

function config(command: string) {
  return parseRoutes(`services:
  app:
    discovery: { type: scaler }
    scaling: { scaler: { type: process, command: [${command}] } }
routes:
  - { match: { path: / }, service: app }
`, 'routes.yaml', createBuiltinRegistry());
}

/** A scaler's endpoint stream the test drives, one per acquired instance, as the scaling loop hands it out. */
function fakeSource() {
  const opened: { command: string; push(u: DiscoveryUpdate): void; closed: boolean }[] = [];
  const source = (s: { scaling: { scaler: { options: Record<string, unknown> } } | null }): Discovery => {
    const queue: DiscoveryUpdate[] = [];
    let wake: (() => void) | null = null;
    const entry = { command: String((s.scaling?.scaler.options.command as string[])[0]), push: (u: DiscoveryUpdate) => { queue.push(u); wake?.(); }, closed: false };
    opened.push(entry);
    return {
      async *watch(_service, signal) {
        signal.addEventListener('abort', () => wake?.());
        while (!signal.aborted) {
          const u = queue.shift();
          if (u) yield u; else await new Promise<void>((r) => { wake = r; });
        }
      },
      async close() { entry.closed = true; },
    };
  };
  return { opened, source };
}

const ep = (port: number): Endpoint => ({ address: `http://127.0.0.1:${port}`, weight: 1 });
const tick = () => new Promise((r) => setTimeout(r, 10));

t.test('one feed per scaler-fed pool: the set goes to every worker, a late watcher gets the current one', async (t) => {
  const { opened, source } = fakeSource();
  const sent: [string, readonly Endpoint[] | null][] = [];
  const feeds = new ScalerEndpointFeeds(source as never, (key, endpoints) => sent.push([key, endpoints]), captureLogger().log);
  const a = config('a');
  const key = PoolManager.keyOf(a.services.get('app')!);
  feeds.acquire(a);
  feeds.acquire(a);
  t.equal(opened.length, 1, 'one scaler stream, however many configs name it');
  opened[0]!.push({ kind: 'reset', endpoints: [ep(1001)] });
  opened[0]!.push({ kind: 'add', endpoints: [ep(1002)] });
  opened[0]!.push({ kind: 'remove', addresses: [ep(1001).address] });
  await tick();
  t.same(sent.map(([k, e]) => [k === key, e?.map((x) => x.address)]), [[true, [ep(1001).address]], [true, [ep(1001).address, ep(1002).address]], [true, [ep(1002).address]]]);
  const late: (readonly Endpoint[])[] = [];
  feeds.watch(7, key, (e) => late.push(e));
  t.same(late, [[ep(1002)]], 'a worker that starts later gets the current set at once');
  await feeds.closeAll();
  t.ok(opened[0]!.closed);
});

t.test('new scaler options: the old feed lives while a worker still has a pool on it, and ends with the last one (or its exit)', async (t) => {
  const { opened, source } = fakeSource();
  const sent: [string, readonly Endpoint[] | null][] = [];
  const feeds = new ScalerEndpointFeeds(source as never, (key, endpoints) => sent.push([key, endpoints]), captureLogger().log);
  const a = config('a');
  const b = config('b');
  const oldKey = PoolManager.keyOf(a.services.get('app')!);
  feeds.acquire(a);
  feeds.watch(1, oldKey, () => {});
  feeds.watch(2, oldKey, () => {});
  // A reload to b: prepared (new feed), committed (the primary lets a go), the workers retire their old pools.
  feeds.acquire(b);
  t.equal(opened.length, 2, 'the new options start a new set');
  feeds.release(a);
  await tick();
  t.notOk(opened[0]!.closed, 'the old set still serves the workers\' old generation');
  feeds.unwatch(1, oldKey);
  t.notOk(opened[0]!.closed, 'nor when one worker of two let go');
  feeds.workerGone(2);
  await tick();
  t.ok(opened[0]!.closed, 'closed once no worker uses it');
  t.same(sent.at(-1), [oldKey, null], 'and the workers are told');
  t.notOk(opened[1]!.closed, 'the new set runs on');

  // A refused reload gives its feeds back.
  const c = config('c');
  feeds.acquire(c);
  feeds.release(c);
  await tick();
  t.ok(opened[2]!.closed);
  await feeds.closeAll();
});

t.test('a scaler that cannot start fails the acquire and holds nothing', async (t) => {
  const feeds = new ScalerEndpointFeeds(() => { throw new Error('cannot create'); }, () => {}, captureLogger().log);
  t.throws(() => feeds.acquire(config('a')), /cannot create/);
  await feeds.closeAll();
});
