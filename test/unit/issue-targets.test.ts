import t from 'tap';
import { peerTargetLines } from '../../bench/issue-targets.js';
import type { SystemSummary } from '../../bench/report.js';

/** A summary row with the given req/s per round (rounds 1, 2, …); the median is taken as the harness does. */
function row(system: string, perRound: number[]): SystemSummary {
  const sorted = [...perRound].sort((a, b) => a - b);
  return {
    system, kind: system === 'gantry' ? 'gantry' : 'anchor', rounds: perRound.length, rps: sorted[Math.floor(sorted.length / 2)] as number,
    rpsMin: sorted[0] as number, rpsMax: sorted.at(-1) as number, rpsByRound: new Map(perRound.map((r, i) => [i + 1, r])),
    p50Ms: 1, p99Ms: 2, httpErrors: 0, socketErrors: 0, proxyCpuPct: null, upstreamCpuPct: null, loadgenCpuPct: null, otherCpuPct: null,
  } as SystemSummary;
}

t.test('the verdict stays on the medians; the ratios paired within rounds are shown beside it', async (t) => {
  // Rounds 3-5 slowed gantry alone (a neighbour on its CPU before nginx's turn came): medians 0.5x, rounds 0.4-0.6x.
  const lines = peerTargetLines([row('gantry', [12_000, 12_000, 6_000, 6_000, 6_000]), row('nginx', [20_000, 20_000, 15_000, 15_000, 12_000])]);
  const nginx = lines.find((l) => l.includes('× nginx'));
  t.match(nginx, /NOT met \(6,000 ÷ 15,000 req\/s = 0\.40×\); per round: median 0\.50×, 0\.40×–0\.60×$/);
  t.match(lines.find((l) => l.includes('fast-gateway')), /not judged: fast-gateway did not run/);
});
