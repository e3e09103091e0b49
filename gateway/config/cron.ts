/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week) evaluated in an IANA time zone.
 *
 * Syntax: `*`, numbers, ranges `a-b`, steps `*\/n` and `a-b/n`, lists `a,b`, names `jan`-`dec` and `sun`-`sat`, Sunday as
 * 0 or 7, and the macros @hourly @daily @midnight @weekly @monthly @yearly @annually. As in Vixie cron, when both
 * day-of-month and day-of-week are restricted, a day matches if either does.
 *
 * Time zones use Intl (no tz database of our own). Wall-clock times are searched first and then mapped to instants:
 * a time that a daylight-saving jump skips still fires, shifted by the jump (02:30 on a spring-forward night fires at
 * 03:30), so a schedule is never lost for a day; a time that occurs twice fires once, at its first occurrence.
 *
 * Written here rather than taken from a package: ~200 lines with no dependency, and we need exactly one operation
 * (the next fire time after an instant) with DST behaviour we choose and test.
 */

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'day-of-week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] as const;

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *',
};

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** How far ahead a search looks before it gives up (covers leap days: Feb 29 on a given weekday can be 28 years away). */
const SEARCH_YEARS = 30;

export class CronSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CronSyntaxError';
  }
}

function parseValue(text: string, field: (typeof FIELDS)[number]): number {
  const lower = text.toLowerCase();
  if ('names' in field) {
    const i = (field.names as readonly string[]).indexOf(lower);
    if (i >= 0) return i + field.min;
  }
  if (!/^\d+$/.test(text)) throw new CronSyntaxError(`${field.name}: "${text}" is not a number${'names' in field ? ' or a name' : ''}`);
  const v = Number(text);
  if (v < field.min || v > field.max) throw new CronSyntaxError(`${field.name}: ${v} is outside ${field.min}-${field.max}`);
  return v;
}

function parseField(text: string, field: (typeof FIELDS)[number]): { set: boolean[]; star: boolean } {
  const set = new Array<boolean>(field.max + 1).fill(false);
  let star = false;
  for (const part of text.split(',')) {
    if (part === '') throw new CronSyntaxError(`${field.name}: empty list item in "${text}"`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) throw new CronSyntaxError(`${field.name}: "${part}" has two steps`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) throw new CronSyntaxError(`${field.name}: step "${stepText}" must be a positive integer`);
      step = Number(stepText);
    }
    let lo: number, hi: number;
    if (range === '*') {
      lo = field.min;
      hi = field.name === 'day-of-week' ? 6 : field.max;
      if (stepText === undefined) star = true;
    } else {
      const bounds = (range as string).split('-');
      if (bounds.length > 2) throw new CronSyntaxError(`${field.name}: "${range}" is not a range`);
      lo = parseValue(bounds[0] as string, field);
      hi = bounds.length === 2 ? parseValue(bounds[1] as string, field) : stepText === undefined ? lo : field.max;
      if (hi < lo) throw new CronSyntaxError(`${field.name}: range ${range} runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) set[v] = true;
  }
  return { set, star };
}

/** Wall-clock fields of an instant in a time zone, via one cached Intl formatter per zone. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws RangeError for an unknown zone. */
export function checkTimeZone(timeZone: string): void {
  formatter(timeZone);
}

/** The instant's wall-clock time in `timeZone`, as milliseconds of a naive UTC timeline (seconds dropped). */
export function wallClock(instant: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(instant)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(parts.year as number, (parts.month as number) - 1, parts.day, parts.hour, parts.minute);
}

/** Offset (wall − UTC) in ms at an instant. */
function offsetAt(instant: number, timeZone: string): number {
  const floored = Math.floor(instant / MINUTE_MS) * MINUTE_MS;
  return wallClock(floored, timeZone) - floored;
}

/** The first instant whose wall clock is `wall` (or, inside a skipped gap, the first instant after the gap). */
export function instantOf(wall: number, timeZone: string): number {
  // Try the offsets in force a day either side of the guess: at most two exist around any one DST change.
  const candidates = new Set([offsetAt(wall - DAY_MS, timeZone), offsetAt(wall, timeZone), offsetAt(wall + DAY_MS, timeZone)]);
  const exact: number[] = [];
  for (const off of candidates) {
    const t = wall - off;
    if (wallClock(t, timeZone) === wall) exact.push(t);
  }
  if (exact.length) return Math.min(...exact);
  // A skipped time: the earlier offset maps it past the gap (02:30 on a spring-forward night becomes 03:30).
  const before = offsetAt(wall - DAY_MS, timeZone);
  const after = offsetAt(wall + DAY_MS, timeZone);
  return wall - Math.min(before, after);
}

export class CronExpression {
  readonly #minute: boolean[];
  readonly #hour: boolean[];
  readonly #dom: boolean[];
  readonly #month: boolean[];
  readonly #dow: boolean[];
  readonly #domStar: boolean;
  readonly #dowStar: boolean;

  constructor(readonly source: string, readonly timeZone = 'UTC') {
    const text = MACROS[source.trim().toLowerCase()] ?? source.trim();
    const parts = text.split(/\s+/);
    if (parts.length !== 5) throw new CronSyntaxError(`expected 5 fields (minute hour day-of-month month day-of-week), found ${parts.length}`);
    const parsed = parts.map((p, i) => parseField(p, FIELDS[i] as (typeof FIELDS)[number]));
    this.#minute = parsed[0]!.set;
    this.#hour = parsed[1]!.set;
    this.#dom = parsed[2]!.set;
    this.#month = parsed[3]!.set;
    const dow = parsed[4]!.set;
    if (dow[7]) dow[0] = true;   // 7 is Sunday too
    this.#dow = dow;
    this.#domStar = parsed[2]!.star;
    this.#dowStar = parsed[4]!.star;
    try {
      checkTimeZone(timeZone);
    } catch {
      throw new CronSyntaxError(`unknown time zone "${timeZone}"`);
    }
    if (this.nextWall(Date.UTC(2000, 0, 1) - MINUTE_MS) === null) throw new CronSyntaxError(`"${source}" never fires (no such date)`);
  }

  #dayMatches(wall: number): boolean {
    const d = new Date(wall);
    const dom = this.#dom[d.getUTCDate()] === true;
    const dow = this.#dow[d.getUTCDay()] === true;
    if (this.#domStar || this.#dowStar) return (this.#domStar || dom) && (this.#dowStar || dow);
    return dom || dow;
  }

  /** The first matching wall-clock minute strictly after `wall` (naive UTC timeline), or null within the search limit. */
  nextWall(wall: number): number | null {
    let t = Math.floor(wall / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
    const limit = t + SEARCH_YEARS * 366 * DAY_MS;
    while (t < limit) {
      const d = new Date(t);
      if (!this.#month[d.getUTCMonth() + 1]) {
        t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
        continue;
      }
      if (!this.#dayMatches(t)) {
        t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
        continue;
      }
      if (!this.#hour[d.getUTCHours()]) {
        t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours() + 1);
        continue;
      }
      if (!this.#minute[d.getUTCMinutes()]) {
        t += MINUTE_MS;
        continue;
      }
      return t;
    }
    return null;
  }

  /** The first fire instant strictly after `instant` (epoch ms), or null if it never fires again. */
  next(instant: number): number | null {
    let wall = wallClock(instant, this.timeZone);
    // A wall minute can map to an instant at or before `instant` around a fall-back change: search on.
    for (let guard = 0; guard < 4; guard++) {
      const w = this.nextWall(wall);
      if (w === null) return null;
      const t = instantOf(w, this.timeZone);
      if (t > instant) return t;
      wall = w;
    }
    return null;
  }
}
