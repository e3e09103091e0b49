import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConfigProblem } from '../errors.js';
import type { ReloadTiming } from '../runtime/reload-timer.js';
import type { ReloadOutcome } from '../runtime/reloader.js';
import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import { RecentList } from './recent-list.js';

export interface ReloadRecord {
  /** Epoch ms when the reload finished. */
  readonly at: number;
  readonly result: ReloadOutcome['result'];
  readonly generation: number;
  readonly hash: string | null;
  readonly message: string | null;
  readonly problems: number;
}

/** What the metrics keep of a reload's outcome (a ReloadOutcome is one; a cluster worker gets it from the primary). */
export type ReloadResult =
  | { readonly result: 'applied' | 'unchanged'; readonly generation: number; readonly hash: string }
  | { readonly result: 'refused'; readonly generation: number; readonly problems: readonly ConfigProblem[]; readonly message: string };

/** The serving config and its reloads: gauges for Prometheus, the recent reloads for the admin API and dashboard. */
export class ConfigMetrics {
  readonly #reloads = new RecentList<ReloadRecord>(50);
  readonly #reloadsTotal: Counter<'result'>;
  readonly #lastReloadOk: Gauge;
  readonly #configVersion: Gauge;
  readonly #configInfo: Gauge<'hash' | 'file'>;
  readonly #configLoadedAt: Gauge;
  readonly #reloadLoopDelay: Gauge;
  readonly #reloadDuration: Gauge;

  constructor(registry: Registry, private readonly now: () => number) {
    const registers = [registry];
    this.#reloadsTotal = new Counter({ name: 'gantry_config_reloads_total', help: 'Config reloads, by result: applied, unchanged or refused.', labelNames: ['result'], aggregator: 'max', registers });
    this.#lastReloadOk = new Gauge({ name: 'gantry_config_last_reload_successful', help: '1 unless the last reload was refused.', aggregator: 'min', registers });
    this.#configVersion = new Gauge({ name: 'gantry_config_version', help: 'Generation of the serving config: 1 at start, +1 per applied reload.', aggregator: 'max', registers });
    this.#configInfo = new Gauge({ name: 'gantry_config_info', help: 'Always 1; labels: sha256 of the serving routes file and its path.', labelNames: ['hash', 'file'], aggregator: 'max', registers });
    this.#configLoadedAt = new Gauge({ name: 'gantry_config_loaded_timestamp_seconds', help: 'When the serving config was loaded (Unix time).', aggregator: 'max', registers });
    this.#reloadLoopDelay = new Gauge({ name: 'gantry_reload_event_loop_delay_max_seconds', help: 'The longest the event loop was blocked during the last reload.', aggregator: 'max', registers });
    this.#reloadDuration = new Gauge({ name: 'gantry_reload_duration_seconds', help: 'Wall time of the last reload, from reading the file to the swap.', aggregator: 'max', registers });
    for (const result of ['applied', 'unchanged', 'refused'] as const) this.#reloadsTotal.inc({ result }, 0);
    this.#lastReloadOk.set(1);
  }

  /** At start and after each applied reload. */
  configLoaded(snapshot: RuntimeSnapshot): void {
    this.#configVersion.set(snapshot.generation);
    this.#configInfo.reset();
    this.#configInfo.set({ hash: snapshot.config.hash, file: snapshot.config.file }, 1);
    this.#configLoadedAt.set(snapshot.loadedAt / 1000);
  }

  /**
   * Once per reload run (coalesced SIGHUPs count once per run, not once per signal); in cluster mode every worker
   * records the outcome the primary announces for the whole cluster.
   */
  reload(outcome: ReloadResult): void {
    this.#reloadsTotal.inc({ result: outcome.result });
    this.#lastReloadOk.set(outcome.result === 'refused' ? 0 : 1);
    this.#reloads.push({
      at: this.now(), result: outcome.result, generation: outcome.generation,
      hash: outcome.result === 'refused' ? null : outcome.hash,
      message: outcome.result === 'refused' ? outcome.message : null,
      problems: outcome.result === 'refused' ? outcome.problems.length : 0,
    });
  }

  /** Shortly after each reload (prepared, then committed, aborted or refused). */
  reloadTiming(timing: ReloadTiming): void {
    this.#reloadLoopDelay.set(timing.loopDelayMaxMs / 1000);
    this.#reloadDuration.set(timing.totalMs / 1000);
  }

  recentReloads(): readonly ReloadRecord[] {
    return this.#reloads.items();
  }
}
