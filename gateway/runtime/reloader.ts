import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { GatewayConfig, RouteConfig } from '../config/gateway-config.js';
import { jsonEqual } from '../config/json-equal.js';
import { loadRoutesFile } from '../config/load-routes-file.js';
import { formatProblem, isConfigError, type ConfigProblem } from '../errors.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { PoolManager } from '../upstream/pool-manager.js';
import type { PolicyRuntime } from '../policies/policy.js';
import { buildSnapshot, commitSnapshot, releaseSnapshot } from './build-snapshot.js';
import { ReloadTimer, type ReloadTiming } from './reload-timer.js';
import { SliceClock } from './slice-clock.js';
import type { RuntimeSnapshot } from './runtime-snapshot.js';
import type { SnapshotHolder } from './snapshot-holder.js';

export interface ConfigChanges {
  readonly routes: { readonly added: string[]; readonly removed: string[]; readonly changed: string[] };
  readonly services: { readonly added: string[]; readonly removed: string[]; readonly changed: string[] };
  /** Fields that only take effect after a restart (the listening sockets are never closed by a reload). */
  readonly restartRequired: string[];
}

export type ReloadOutcome =
  | { readonly result: 'applied'; readonly generation: number; readonly hash: string; readonly changes: ConfigChanges }
  | { readonly result: 'unchanged'; readonly generation: number; readonly hash: string }
  | { readonly result: 'refused'; readonly generation: number; readonly problems: readonly ConfigProblem[]; readonly message: string };

/** Names added, removed and changed from `before` to `after` (names are unique in each), a slice at a time. */
async function diff<T>(before: Iterable<[string, T]>, after: Iterable<[string, T]>, same: (a: T, b: T) => boolean, slices: SliceClock) {
  const left = new Map<string, T>();
  for (const [k, v] of before) {
    left.set(k, v);
    if (slices.due()) await slices.pause();
  }
  const added: string[] = [];
  const changed: string[] = [];
  for (const [k, v] of after) {
    if (!left.has(k)) added.push(k);
    else if (!same(left.get(k)!, v)) changed.push(k);
    left.delete(k);   // what stays in `left` was removed
    if (slices.due()) await slices.pause();
  }
  return { added, removed: [...left.keys()], changed };
}

function* byName(routes: readonly RouteConfig[]): Iterable<[string, RouteConfig]> {
  for (const r of routes) yield [r.name, r];
}

/** A route that only moved in the file is not changed. */
const sameRoute = (a: RouteConfig, b: RouteConfig) => jsonEqual({ ...a, index: 0 }, { ...b, index: 0 });

/**
 * What a reload changes, for its log line. In slices: comparing 10 000 routes took 15-45 ms of CPU on a busy 2-core
 * machine (comparing their stableStringify forms: 230-310 ms), too much for one block next to the rest of a reload.
 */
export async function describeChanges(before: GatewayConfig, after: GatewayConfig, slices = new SliceClock()): Promise<ConfigChanges> {
  const restartRequired: string[] = [];
  if (!jsonEqual(before.listen, after.listen)) restartRequired.push('listen');
  if (!jsonEqual(before.admin, after.admin)) restartRequired.push('admin');
  if (before.server.maxHeaderBytes !== after.server.maxHeaderBytes) restartRequired.push('server.maxHeaderBytes');
  if (before.log.file !== after.log.file) restartRequired.push('log.file');
  if (!jsonEqual(before.fleet, after.fleet)) restartRequired.push('fleet');
  // The HTTPS listener opens and closes with the process; its certificates, redirect and HSTS follow reloads.
  if ((before.tls === null) !== (after.tls === null)) restartRequired.push('tls');
  else if (!jsonEqual(before.tls?.listen, after.tls?.listen)) restartRequired.push('tls.listen');
  if (before.tls && after.tls && before.tls.http2 !== after.tls.http2) restartRequired.push('tls.http2');
  // HTTP-01 follows at once; TLS-ALPN-01 needs the ALPN callback the listener is created with.
  if (before.tls && after.tls && before.tls.acme === null && after.tls.acme !== null) restartRequired.push('tls.acme');
  return {
    routes: await diff(byName(before.routes), byName(after.routes), sameRoute, slices),
    services: await diff(before.services, after.services, jsonEqual, slices),
    restartRequired,
  };
}

export interface ReloaderDeps {
  readonly file: string;
  readonly plugins: PluginRegistry;
  readonly pools: PoolManager;
  /** What policies keep across configs (rate-limit buckets, fetched keys) and report to. */
  readonly policies: PolicyRuntime;
  readonly holder: SnapshotHolder;
  readonly log: Logger;
  /** Applies what the new config changes outside the snapshot (server limits, log level). */
  readonly onApplied: (snapshot: RuntimeSnapshot) => void;
  /** Called with the outcome of every run, including each follow-up run of coalesced requests (metrics). */
  readonly onOutcome?: (outcome: ReloadOutcome) => void;
  /** Called once per prepared reload, shortly after it ended, with its phase times and event-loop stall (metrics). */
  readonly onTiming?: (timing: ReloadTiming, result: ReloadOutcome['result'] | 'aborted') => void;
}

/**
 * SIGHUP's work. Everything that can fail (read, parse, validate, build, warm) happens before the one-assignment
 * swap, so a bad file changes nothing. Reloads never overlap: a request for one while another runs makes exactly
 * one more run afterwards, on the newest file, and every caller gets that final outcome.
 */
export class Reloader {
  #running: Promise<ReloadOutcome> | null = null;
  #again = false;

  constructor(private readonly deps: ReloaderDeps) {}

  reload(): Promise<ReloadOutcome> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#loop().finally(() => { this.#running = null; });
    return this.#running;
  }

  async #loop(): Promise<ReloadOutcome> {
    let outcome: ReloadOutcome | undefined;
    do {
      this.#again = false;
      const next = await this.#once();
      this.deps.onOutcome?.(next);
      // A follow-up run that finds the file unchanged must not hide that the first run applied it.
      outcome = next.result === 'unchanged' && outcome?.result === 'applied' ? outcome : next;
    } while (this.#again);
    return outcome;
  }

  async #once(): Promise<ReloadOutcome> {
    const prepared = await this.prepare();
    return prepared.commit();
  }

  /**
   * The first phase of a reload, on its own for cluster workers (gateway/cluster/): everything that can fail, up to
   * a built and warmed snapshot, but no swap and no change to what serves. `commit()` swaps it in (its endpoint
   * settings, weights and health checks take effect then); `abort()` throws it away. With `expectedHash`, a file
   * that changed since the primary validated it is refused, so every worker serves the same.
   */
  async prepare(expectedHash?: string): Promise<PreparedReload> {
    const { holder, log, pools, plugins, file } = this.deps;
    const timer = await ReloadTimer.start();
    const current = holder.current as RuntimeSnapshot;
    const done = (outcome: ReloadOutcome): PreparedReload => {
      this.#report(timer, outcome.result, outcome.generation);
      return { outcome, commit: () => outcome, abort: () => {} };
    };
    let config: GatewayConfig;
    try {
      config = await loadRoutesFile(file, plugins, timer);
    } catch (err) {
      if (!isConfigError(err)) { void timer.finish(); throw err; }   // finish gives its monitor back
      const message = err.problems.map(formatProblem).join('; ');
      log.error({ event: 'reload-refused', generation: current.generation, problems: err.problems.length }, `reload refused, still serving generation ${current.generation}: ${message}`);
      return done({ result: 'refused', generation: current.generation, problems: err.problems, message });
    }
    if (expectedHash !== undefined && config.hash !== expectedHash) {
      const message = 'the file changed while the reload was prepared';
      log.warn({ event: 'reload-refused', generation: current.generation }, message);
      return done({ result: 'refused', generation: current.generation, problems: [], message });
    }
    if (config.hash === current.config.hash) {
      log.info({ event: 'reload-unchanged', generation: current.generation }, 'config unchanged; nothing to reload');
      return done({ result: 'unchanged', generation: current.generation, hash: config.hash });
    }
    const changes = await describeChanges(current.config, config);
    timer.lap('diff');
    let next: RuntimeSnapshot;
    try {
      next = await buildSnapshot(config, current.generation + 1, pools, this.deps.policies, log, timer);
    } catch (err) {
      const message = `cannot start the new config: ${(err as Error).message}`;
      log.error({ event: 'reload-refused', generation: current.generation, err }, message);
      return done({ result: 'refused', generation: current.generation, problems: [], message });
    }
    // The swap and what follows it (metrics of every route) run in a turn of their own, not after the build's.
    await nextTurn();
    const outcome: ReloadOutcome = { result: 'applied', generation: next.generation, hash: config.hash, changes };
    let settled = false;
    return {
      outcome,
      commit: () => {
        if (settled) return outcome;
        settled = true;
        holder.swap(next, (old) => { void releaseSnapshot(old, pools); });
        commitSnapshot(next, pools);
        timer.lap('swap');
        this.deps.onApplied(next);
        timer.lap('apply');
        log.info({ event: 'reloaded', generation: next.generation, hash: config.hash.slice(0, 12), changes }, `config reloaded as generation ${next.generation}`);
        if (changes.restartRequired.length) {
          log.warn({ event: 'restart-required', fields: changes.restartRequired }, `changed ${changes.restartRequired.join(', ')}: takes effect after a restart`);
        }
        this.#report(timer, 'applied', next.generation);
        return outcome;
      },
      abort: () => {
        if (settled) return;
        settled = true;
        void releaseSnapshot(next, pools);
        log.warn({ event: 'reload-aborted', generation: current.generation }, 'prepared reload aborted: another worker refused it');
        this.#report(timer, 'aborted', current.generation);
      },
    };
  }

  /** One `reload-timing` line per prepared reload, written a monitor tick after it ended (reload-timer.ts says why). */
  #report(timer: ReloadTimer, result: ReloadOutcome['result'] | 'aborted', generation: number): void {
    void timer.finish().then((timing) => {
      this.deps.log.info({ event: 'reload-timing', result, generation, ...timing },
        `reload ${result} in ${timing.totalMs} ms; event loop blocked ${timing.loopDelayMaxMs} ms at most`);
      this.deps.onTiming?.(timing, result);
    });
  }
}

/** A reload ready to swap in (`outcome.result === 'applied'`), or already decided (unchanged, refused). */
export interface PreparedReload {
  readonly outcome: ReloadOutcome;
  commit(): ReloadOutcome;
  abort(): void;
}
