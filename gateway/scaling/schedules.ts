import { CronExpression } from '../config/cron.js';
import type { ScheduleConfig } from '../config/scaling-config.js';

export interface ActiveSchedule {
  readonly index: number;
  readonly min: number;
  readonly cron: string;
}

/**
 * The schedules of one service, compiled once per config. A window that starts at fire time s covers
 * [s − lead, s + duration); at an instant `now` it is open exactly when some fire time lies in (now − duration,
 * now + lead], which is one `next` search per schedule per tick.
 */
export class Schedules {
  readonly #entries: { readonly config: ScheduleConfig; readonly cron: CronExpression }[];

  constructor(configs: readonly ScheduleConfig[]) {
    this.#entries = configs.map((config) => ({ config, cron: new CronExpression(config.cron, config.timezone) }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The open schedule with the highest floor at epoch-ms `now`, or null when none is open. */
  active(now: number): ActiveSchedule | null {
    let best: ActiveSchedule | null = null;
    this.#entries.forEach(({ config, cron }, index) => {
      const durationMs = config.durationMinutes * 60_000;
      const fire = cron.next(now - durationMs);
      if (fire === null || fire > now + config.leadMs) return;
      if (best === null || config.min > best.min) best = { index, min: config.min, cron: config.cron };
    });
    return best;
  }
}
