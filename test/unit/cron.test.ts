import t from 'tap';
import { CronExpression, CronSyntaxError } from '../../gateway/config/cron.js';
import { Schedules } from '../../gateway/scaling/schedules.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function fires(expr: string, tz: string, from: string, n: number): (string | null)[] {
  const c = new CronExpression(expr, tz);
  const out: (string | null)[] = [];
  let cur = at(from);
  for (let i = 0; i < n; i++) {
    const next = c.next(cur);
    out.push(iso(next));
    if (next === null) break;
    cur = next;
  }
  return out;
}

t.test('fields: stars, ranges, steps, lists, names, Sunday as 0 or 7, macros', async (t) => {
  t.same(fires('*/15 9-10 * * *', 'UTC', '2026-01-05T08:59:00Z', 5), [
    '2026-01-05T09:00:00.000Z', '2026-01-05T09:15:00.000Z', '2026-01-05T09:30:00.000Z', '2026-01-05T09:45:00.000Z', '2026-01-05T10:00:00.000Z',
  ]);
  t.same(fires('0 12 * jan,jul mon-fri', 'UTC', '2026-01-30T13:00:00Z', 2), ['2026-07-01T12:00:00.000Z', '2026-07-02T12:00:00.000Z'], 'Jan 31 2026 is a Saturday; next is July');
  t.same(fires('0 0 * * 7', 'UTC', '2026-01-01T00:00:00Z', 1), ['2026-01-04T00:00:00.000Z'], '7 is Sunday');
  t.same(fires('0 0 * * sun', 'UTC', '2026-01-01T00:00:00Z', 1), ['2026-01-04T00:00:00.000Z']);
  t.same(fires('5-20/5 0 1 1 *', 'UTC', '2026-01-01T00:00:00Z', 4), ['2026-01-01T00:05:00.000Z', '2026-01-01T00:10:00.000Z', '2026-01-01T00:15:00.000Z', '2026-01-01T00:20:00.000Z']);
  t.same(fires('@daily', 'UTC', '2026-03-01T10:00:00Z', 1), ['2026-03-02T00:00:00.000Z']);
  t.same(fires('@hourly', 'UTC', '2026-03-01T10:00:00Z', 1), ['2026-03-01T11:00:00.000Z'], 'strictly after');
  t.same(fires('0 0 29 2 *', 'UTC', '2026-01-01T00:00:00Z', 1), ['2028-02-29T00:00:00.000Z'], 'leap day');
});

t.test('day-of-month and day-of-week both restricted: either matches (Vixie cron)', async (t) => {
  // The 13th of each month, or any Friday.
  t.same(fires('0 0 13 * fri', 'UTC', '2026-02-01T00:00:00Z', 4), [
    '2026-02-06T00:00:00.000Z', '2026-02-13T00:00:00.000Z', '2026-02-20T00:00:00.000Z', '2026-02-27T00:00:00.000Z',
  ]);
  t.same(fires('0 0 13 * *', 'UTC', '2026-02-01T00:00:00Z', 1), ['2026-02-13T00:00:00.000Z'], 'a star day-of-week does not widen it');
});

t.test('time zones, including daylight-saving changes', async (t) => {
  t.same(fires('0 9 * * *', 'America/New_York', '2026-01-15T00:00:00Z', 1), ['2026-01-15T14:00:00.000Z'], 'EST is UTC-5');
  t.same(fires('0 9 * * *', 'America/New_York', '2026-07-15T00:00:00Z', 1), ['2026-07-15T13:00:00.000Z'], 'EDT is UTC-4');
  t.same(fires('30 5 * * *', 'Asia/Kolkata', '2026-07-15T00:00:00Z', 1), ['2026-07-16T00:00:00.000Z'], 'half-hour offsets');
  // Berlin springs forward on 2026-03-29 at 02:00 → 03:00: 02:30 does not exist that night and fires at 03:30 CEST.
  t.same(fires('30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', 2), ['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
  // Berlin falls back on 2026-10-25 at 03:00 → 02:00: 02:30 happens twice and fires once, the first time.
  t.same(fires('30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', 2), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  t.same(fires('0 * * * *', 'Europe/Berlin', '2026-10-24T23:30:00Z', 4), [
    '2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T03:00:00.000Z', '2026-10-25T04:00:00.000Z',
  ], 'hourly: the repeated wall hour 02:00 fires once (00:00Z), then 03:00 CET');
});

t.test('mistakes are refused with a reason', async (t) => {
  const bad: [string, string, RegExp][] = [
    ['61 * * * *', 'UTC', /minute: 61 is outside 0-59/],
    ['* * *', 'UTC', /expected 5 fields/],
    ['0 0 30 2 *', 'UTC', /never fires/],
    ['0 0 * * mon-sun', 'UTC', /runs backwards/],
    ['*/0 * * * *', 'UTC', /step "0"/],
    ['0 0 * * *', 'Mars/Olympus', /unknown time zone/],
    ['a * * * *', 'UTC', /minute: "a" is not a number/],
    ['1,,2 * * * *', 'UTC', /empty list item/],
  ];
  for (const [expr, tz, message] of bad) {
    t.throws(() => new CronExpression(expr, tz), { name: 'CronSyntaxError', message }, `${expr} ${tz}`);
  }
  t.ok(new CronSyntaxError('x') instanceof Error);
});

t.test('schedules: a window opens lead ms before each start and lasts its duration', async (t) => {
  const s = new Schedules([
    { cron: '0 8 * * mon-fri', timezone: 'Europe/Berlin', durationMinutes: 600, min: 4, leadMs: 120_000 },
    { cron: '0 12 * * *', timezone: 'Europe/Berlin', durationMinutes: 60, min: 6, leadMs: 0 },
  ]);
  // Monday 2026-01-05; Berlin is UTC+1 in winter: 08:00 local = 07:00Z.
  t.equal(s.active(at('2026-01-05T06:57:00Z')), null, 'before the lead');
  t.same(s.active(at('2026-01-05T06:58:00Z')), { index: 0, min: 4, cron: '0 8 * * mon-fri' }, 'pre-warm: 2 minutes before 08:00');
  t.equal(s.active(at('2026-01-05T10:00:00Z'))?.min, 4);
  t.same(s.active(at('2026-01-05T11:30:00Z')), { index: 1, min: 6, cron: '0 12 * * *' }, 'overlapping windows: the higher floor');
  t.equal(s.active(at('2026-01-05T16:59:59Z'))?.min, 4, 'last second of the 10-hour window');
  t.equal(s.active(at('2026-01-05T17:00:00Z')), null, 'closed after 10 hours');
  t.equal(s.active(at('2026-01-10T09:00:00Z')), null, 'Saturday morning: only the noon window exists');
  t.equal(s.active(at('2026-01-10T11:00:00Z'))?.min, 6);
});
