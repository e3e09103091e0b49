import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LOCK_STALE_MS, OrderLock } from '../../gateway/tls/acme-lock.js';
import { AcmeOrderError } from '../../gateway/tls/acme-order.js';
import { AcmeRenewal, renewalTime, retryDelay } from '../../gateway/tls/acme-renewal.js';
import { captureLog, waitFor } from '../helpers/capture-log.js';

const DAY = 24 * 60 * 60 * 1000;

t.test('renewal at two thirds of the lifetime, less a jitter of up to a thirtieth of it', async (t) => {
  const from = Date.UTC(2026, 0, 1);
  const rows: [lifetimeMs: number, random: number, expectedMs: number][] = [
    [90 * DAY, 0, 60 * DAY],            // Let's Encrypt: 60 days into 90
    [90 * DAY, 0.5, 58.5 * DAY],        // a day and a half earlier
    [90 * DAY, 0.999_999, 57 * DAY],    // up to three days earlier, never more
    [15_000, 0, 10_000],                // pebble's 15 s in the acme test
    [15_000, 0.5, 9_750],
  ];
  for (const [lifetimeMs, random, expectedMs] of rows) {
    const at = renewalTime(from, from + lifetimeMs, random);
    t.ok(Math.abs(at - from - expectedMs) < 1000, `lifetime ${lifetimeMs} ms, random ${random}: ${at - from} ms after issuance`);
  }
});

t.test('failed orders back off doubling from initialMs to maxMs, the upper half jittered', async (t) => {
  const retry = { initialMs: 60_000, maxMs: 3_600_000 };
  const rows: [failures: number, random: number, expectedMs: number][] = [
    [1, 0, 30_000], [1, 0.999, 59_970],
    [2, 0, 60_000], [3, 0, 120_000], [6, 0, 960_000],
    [7, 0, 1_800_000], [8, 0, 1_800_000], [50, 0.5, 2_700_000],   // capped at maxMs
  ];
  for (const [failures, random, expectedMs] of rows) t.equal(retryDelay(failures, retry, random), expectedMs, `failure ${failures}, random ${random}`);
});

t.test('the order lock: one holder at a time; stale when its process is gone, when old, or when never written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'order.lock');
  const first = new OrderLock(file);
  t.equal(await first.acquire(), null, 'taken');
  const held = JSON.parse(await readFile(file, 'utf8')) as { pid: number; host: string };
  t.equal(held.pid, process.pid);
  const second = new OrderLock(file);
  t.match(await second.acquire(), { pid: process.pid }, 'held by a live process: refused, naming the holder');
  await first.release();
  t.equal(await second.acquire(), null, 'released: the next one takes it');
  await second.release();

  // A process that is gone (a pid far above pid_max) leaves a lock anybody takes over.
  await writeFile(file, JSON.stringify({ pid: 2 ** 30, host: hostname(), at: Date.now() }));
  t.equal(await new OrderLock(file).acquire(), null, 'its process is gone: stale');
  await rm(file);

  // On another host the pid says nothing: the age decides.
  await writeFile(file, JSON.stringify({ pid: 2 ** 30, host: 'elsewhere', at: Date.now() }));
  t.ok(await new OrderLock(file).acquire(), 'another host\'s recent lock holds');
  const later = new OrderLock(file, () => Date.now() + LOCK_STALE_MS + 1);
  t.equal(await later.acquire(), null, `older than ${LOCK_STALE_MS} ms: stale`);
  await later.release();

  // Created but never written (its maker died in between): held for 10 s, stale after.
  await writeFile(file, '');
  t.ok(await new OrderLock(file).acquire(), 'an empty lock just made holds');
  const old = new Date(Date.now() - 11_000);
  await utimes(file, old, old);
  t.equal(await new OrderLock(file).acquire(), null, 'an empty lock made 11 s ago is stale');
});

t.test('stop aborts the order under way at once and logs no failure for it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-renewal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { log, lines } = captureLog();
  let seen: AbortSignal | undefined;
  const renewal = new AcmeRenewal({
    acme: { directory: 'https://ca.test/dir', email: null, domains: ['a.test'], storage: dir, caFile: null, challenges: ['http-01'], retry: { initialMs: 1000, maxMs: 2000 } },
    minVersion: 'TLSv1.2', log,
    // An order that only ends when its signal does (a CA that never answers).
    order: (_acme, _storage, signal) => { seen = signal; return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error))); },
  });
  renewal.start();
  await waitFor(() => seen !== undefined, 2000, 'the order started');
  t.equal(lines.filter((l) => l.event === 'acme-order-started').length, 1);
  t.equal(await readFile(join(dir, 'order.lock'), 'utf8').then(() => true), true, 'the lock is held while ordering');
  await renewal.stop();
  t.equal(seen?.aborted, true, 'the order\'s signal is aborted');
  t.same(lines.filter((l) => l.event === 'acme-order-failed'), [], 'a stop is no failure');
  await t.rejects(readFile(join(dir, 'order.lock')), { code: 'ENOENT' }, 'the lock is released');
});

t.test('a failed order is logged with its problem document and retried after the backoff', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-renewal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { log, lines } = captureLog();
  let orders = 0;
  const problem = { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'no', status: 400 };
  const renewal = new AcmeRenewal({
    acme: { directory: 'https://ca.test/dir', email: null, domains: ['a.test'], storage: dir, caFile: null, challenges: ['http-01'], retry: { initialMs: 1000, maxMs: 2000 } },
    minVersion: 'TLSv1.2', log, random: () => 0,
    order: async () => { orders++; throw new AcmeOrderError('refused', problem); },
  });
  t.teardown(() => renewal.stop());
  renewal.start();
  await waitFor(() => orders === 2, 5000, 'ordered again');
  const failed = lines.filter((l) => l.event === 'acme-order-failed');
  t.match(failed[0], { failures: 1, retryInMs: 500, problem, err: 'refused' });
});
