import t from 'tap';
import { decodeLoadReport } from '../../gateway/fleet/load-report.js';
import { LATENCY_LAYOUT, quantileOf, BIN_COUNT } from '../../gateway/signals/latency-bins.js';

/** A window of `n` requests of `ms` each, counted in bins of base `baseMs`, four per doubling (the sparse pair form). */
function windowOf(n: number, ms: number, baseMs: number) {
  const bin = Math.ceil(Math.log2(ms / baseMs) * 4);
  return { spanMs: 60_000, arrivals: n, completed: n, errors: 0, inFlightMs: 0, inFlightPeak: 0, waitingMs: 0, waitingPeak: 0, latency: [bin, n] };
}

function reportJson(baseMs: number, layout?: object): string {
  const w = windowOf(100, 40, baseMs);
  return JSON.stringify({
    instance: 'gw-a', at: 1, version: 'x', config: { hash: 'h', generation: 1 },
    services: { api: { stable: w, panic: w, inFlight: 0, waiting: 0, idleMs: 0, recordingMs: 60_000 } },
    ...(layout ? { latencyBins: layout } : {}),
  });
}

function p50(json: string, total = 100): number | null {
  const r = decodeLoadReport(json);
  const bins = new Array<number>(BIN_COUNT).fill(0);
  const pairs = r!.services.api!.stable.latency;
  for (let k = 0; k < pairs.length; k += 2) bins[pairs[k]!] = (bins[pairs[k]!] ?? 0) + pairs[k + 1]!;
  return quantileOf(bins, total, 0.5);
}

t.test('a report of a gateway whose histogram had other bins is read in this one\'s: the same p50 (mixed versions in one fleet)', async (t) => {
  // Reports before the layout was named counted from 0.25 ms; 40 ms there is bin 30, which here means about 16 ms.
  const old = p50(reportJson(0.25));
  const current = p50(reportJson(LATENCY_LAYOUT.baseMs, LATENCY_LAYOUT));
  t.ok(current! > 36 && current! < 44, `this version's own report reads 40 ms as ${current}`);
  t.equal(old, current, 'an older gateway\'s 40 ms reads as the same bin');
  t.equal(decodeLoadReport(reportJson(0.25))!.latencyBins, LATENCY_LAYOUT, 'the decoded report names this layout');
});

t.test('a report in a layout named by a newer gateway (e.g. 8 bins per doubling) is re-binned by its own words', async (t) => {
  const w = { spanMs: 60_000, arrivals: 10, completed: 10, errors: 0, inFlightMs: 0, inFlightPeak: 0, waitingMs: 0, waitingPeak: 0, latency: [Math.ceil(Math.log2(40 / 0.05) * 8), 10] };
  const json = JSON.stringify({ instance: 'gw-b', at: 1, version: 'y', config: { hash: 'h', generation: 1 }, latencyBins: { baseMs: 0.05, perDoubling: 8, count: 200 },
    services: { api: { stable: w, panic: w, inFlight: 0, waiting: 0, idleMs: 0, recordingMs: 60_000 } } });
  const v = p50(json, 10);
  t.ok(v! > 36 && v! < 44, `40 ms reads as ${v}`);
});
