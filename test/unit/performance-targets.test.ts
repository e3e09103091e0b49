import t from 'tap';
import { instructionsTargetLine, peerTargetLines } from '../../bench/performance-targets.js';
import type { SystemSummary } from '../../bench/report.js';

/** A summary row with the given req/s per round (rounds 1, 2, …); the median is taken as the harness does. */
function row(system: string, perRound: number[]): SystemSummary {
  const sorted = [...perRound].sort((a, b) => a - b);
  return {
    system, kind: system === 'gantry' ? 'gantry' : 'node', rounds: perRound.length, rps: sorted[Math.floor(sorted.length / 2)] as number,
    rpsMin: sorted[0] as number, rpsMax: sorted.at(-1) as number, rpsByRound: new Map(perRound.map((r, i) => [i + 1, r])),
    p50Ms: 1, p99Ms: 2, httpErrors: 0, socketErrors: 0, proxyCpuPct: null, upstreamCpuPct: null, loadgenCpuPct: null, otherCpuPct: null,
  };
}

t.test('the verdict stays on the medians; the ratios paired within rounds are shown beside it', async (t) => {
  // Rounds 3-5 slowed both (a neighbour on the proxy CPU), round 5 gantry more: medians 0.96x, rounds 0.96-1.20x.
  const lines = peerTargetLines([row('gantry', [12_000, 12_000, 6_000, 6_000, 6_000]), row('fast-gateway', [10_000, 10_000, 5_000, 5_000, 6_250])], 'v26.1.0');
  const fastGateway = lines.find((l) => l.includes('× fast-gateway'));
  t.match(fastGateway, /: NOT met \(6,000 ÷ 6,250 req\/s = 0\.96×\); per round: median 1\.20×, 0\.96×–1\.20×$/);
  t.match(lines.find((l) => l.includes('express')), /not judged: express did not run/);
});

t.test('the targets are the project\'s: 1.5x fast-gateway and 3x express in req/s, 1.10x bare-undici in instructions', async (t) => {
  const lines = peerTargetLines([row('gantry', [15_000, 15_000]), row('fast-gateway', [10_000, 10_000]), row('express', [5_100, 5_100])], 'v26.1.0');
  t.same(lines.map((l) => l.replace(/ \(.*$/, '')), ['target gantry ≥ 1.5× fast-gateway req/s: met', 'target gantry ≥ 3× express req/s: NOT met']);
  t.match(instructionsTargetLine(154_000, 140_000, 'v26.1.0'), /≤ 1\.10× bare-undici instructions per request: met \(154k ÷ 140k = 1\.10×\)$/);
  t.match(instructionsTargetLine(155_000, 140_000, 'v26.1.0'), /: NOT met \(155k ÷ 140k = 1\.11×\)$/);
});

t.test('a verdict on another Node than 26 is marked indicative', async (t) => {
  const [line] = peerTargetLines([row('gantry', [15_000]), row('fast-gateway', [10_000])], 'v24.21.0');
  t.match(line, /: met, indicative only \(Node v24\.21\.0; the targets are judged on Node 26\) \(15,000 ÷ 10,000/);
  t.match(instructionsTargetLine(100, 100, 'v20.20.2'), /met, indicative only/);
});
