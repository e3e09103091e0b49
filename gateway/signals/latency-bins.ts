/**
 * The gateway's one latency histogram: fixed, log-spaced bins, four per doubling from 0.1 ms, so a percentile read
 * from the bins is within about ±9 % of the true value (the bin's geometric middle is reported). The scaler's load
 * signals (service-load.ts) and the dashboard's traffic window (admin/traffic-window.ts) both count into these bins
 * and read percentiles through `quantileOf`, so they report the same p99 for the same requests. The last bin holds
 * everything from about 183 s. One Math.log2 per request and no allocation: the recorder adds 1 to a preallocated
 * counter.
 */
export const BINS_PER_DOUBLING = 4;
const BASE_MS = 0.1;
export const BIN_COUNT = 84;

/** The bin of a latency in ms: bin 0 is [0, 0.1], bin i covers (0.1·2^((i-1)/4), 0.1·2^(i/4)]. */
export function binOf(ms: number): number {
  if (!(ms > BASE_MS)) return 0;
  const i = Math.ceil(Math.log2(ms / BASE_MS) * BINS_PER_DOUBLING);
  return i < BIN_COUNT - 1 ? i : BIN_COUNT - 1;
}

/** Upper bound of bin i in ms (Infinity for the last). */
export function binUpperMs(i: number): number {
  return i >= BIN_COUNT - 1 ? Infinity : BASE_MS * 2 ** (i / BINS_PER_DOUBLING);
}

/**
 * The value reported for bin i, rounded to 0.01 ms: its geometric middle (0.1 ms for bin 0; the lower bound for the
 * open last bin). A table made once, so every reader reports the same number for a bin.
 */
const BIN_VALUES_MS = Array.from({ length: BIN_COUNT }, (_, i) => {
  const ms = i === 0 ? BASE_MS : i === BIN_COUNT - 1 ? BASE_MS * 2 ** ((i - 1) / BINS_PER_DOUBLING) : BASE_MS * 2 ** ((i - 0.5) / BINS_PER_DOUBLING);
  return Math.round(ms * 100) / 100;
});

export function binValueMs(i: number): number {
  return BIN_VALUES_MS[i <= 0 ? 0 : i >= BIN_COUNT - 1 ? BIN_COUNT - 1 : i] as number;
}

/** A histogram's bin layout, as a fleet report names it: another version's gateway may count into other bins. */
export interface BinLayout {
  readonly baseMs: number;
  readonly perDoubling: number;
  readonly count: number;
}

export const LATENCY_LAYOUT: BinLayout = { baseMs: BASE_MS, perDoubling: BINS_PER_DOUBLING, count: BIN_COUNT };

export function sameLayout(a: BinLayout, b: BinLayout): boolean {
  return a.baseMs === b.baseMs && a.perDoubling === b.perDoubling && a.count === b.count;
}

/**
 * Sparse pairs (bin, count, …) counted in another layout, moved into this one: each bin's count goes to the bin
 * holding its geometric middle (its lower bound for the open last bin), so a percentile keeps its value within a bin.
 */
export function rebinPairs(pairs: readonly number[], from: BinLayout): number[] {
  const bins = new Map<number, number>();
  for (let k = 0; k + 1 < pairs.length; k += 2) {
    const i = pairs[k] as number;
    if (!(i >= 0 && i < from.count)) continue;
    const ms = i === 0 ? from.baseMs : from.baseMs * 2 ** ((i - (i === from.count - 1 ? 1 : 0.5)) / from.perDoubling);
    const to = binOf(ms);
    bins.set(to, (bins.get(to) ?? 0) + (pairs[k + 1] as number));
  }
  return [...bins].sort((a, b) => a[0] - b[0]).flat();
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
