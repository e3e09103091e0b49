/**
 * Fixed, log-spaced latency bins: four per doubling from 0.25 ms, so a percentile read from the bins is within about
 * ±9 % of the true value (the bin's geometric middle is reported). The last bin holds everything from about 131 s.
 * One Math.log2 per request and no allocation: the recorder adds 1 to a preallocated counter.
 */
export const BINS_PER_DOUBLING = 4;
const MIN_LOG2 = -2;
const MAX_LOG2 = 17;
export const BIN_COUNT = (MAX_LOG2 - MIN_LOG2) * BINS_PER_DOUBLING + 2;

/** The bin of a latency in ms: bin 0 is [0, 0.25], bin i covers (2^((i-1)/4 - 2), 2^(i/4 - 2)]. */
export function binOf(ms: number): number {
  if (!(ms > 0.25)) return 0;
  const i = Math.ceil((Math.log2(ms) - MIN_LOG2) * BINS_PER_DOUBLING);
  return i < BIN_COUNT - 1 ? i : BIN_COUNT - 1;
}

/** Upper bound of bin i in ms (Infinity for the last). */
export function binUpperMs(i: number): number {
  return i >= BIN_COUNT - 1 ? Infinity : 2 ** (i / BINS_PER_DOUBLING + MIN_LOG2);
}

/** The value reported for bin i: its geometric middle (0.25 ms for bin 0; the lower bound for the open last bin). */
export function binValueMs(i: number): number {
  if (i <= 0) return 0.25;
  const lower = 2 ** ((i - 1) / BINS_PER_DOUBLING + MIN_LOG2);
  if (i >= BIN_COUNT - 1) return lower;
  return lower * 2 ** (0.5 / BINS_PER_DOUBLING);
}

/** The q-quantile (0 < q <= 1, nearest rank) of counts summed over bins; null when there are none. */
export function quantileOf(bins: ArrayLike<number>, total: number, q: number): number | null {
  if (total <= 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < BIN_COUNT; i++) {
    seen += bins[i] as number;
    if (seen >= rank) return binValueMs(i);
  }
  return binValueMs(BIN_COUNT - 1);
}
