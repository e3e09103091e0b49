/** Nearest-rank percentile of ascending values; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The middle value (the mean of the two middle ones for an even count); NaN when there are none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function ratio(a: number, b: number): number {
  return b > 0 && Number.isFinite(a) ? a / b : Number.NaN;
}

export const fmt: Record<'rps' | 'ms' | 'ratio' | 'addedMs', (n: number) => string> & { pct: (n: number | null) => string; us: (n: number | null) => string } = {
  rps: (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a'),
  ms: (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : 'n/a'),
  ratio: (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a'),
  /** A latency added on top of another, signed: +1.20 ms, −0.05 ms. */
  addedMs: (n: number) => (Number.isFinite(n) ? `${n < 0 ? '−' : '+'}${fmt.ms(Math.abs(n))}` : 'n/a'),
  pct: (n: number | null) => (n === null || !Number.isFinite(n) ? 'n/a' : `${Math.round(n)}%`),
  /** Microseconds of CPU: 85 µs; – where nothing was measured (direct over plain HTTP). */
  us: (n: number | null) => (n === null || !Number.isFinite(n) ? '–' : `${n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')} µs`),
};
