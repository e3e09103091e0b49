import t from 'tap';
import { instructionsTargetLine, peerTargetLines, tlsTargetLines } from '../../bench/performance-targets.js';
import type { SystemSummary } from '../../bench/report.js';

/** A summary row with the given req/s per round (rounds 1, 2, …); the median is taken as the harness does. */
function row(system: string, perRound: number[], cpu: Partial<Pick<SystemSummary, 'proxyCpuPct' | 'proxyCpuUsPerRequest'>> = {}): SystemSummary {
  const sorted = [...perRound].sort((a, b) => a - b);
  return {
    system, kind: system === 'gantry' ? 'gantry' : 'node', rounds: perRound.length, rps: sorted[Math.floor(sorted.length / 2)] as number,
    rpsMin: sorted[0] as number, rpsMax: sorted.at(-1) as number, rpsByRound: new Map(perRound.map((r, i) => [i + 1, r])),
    p50Ms: 1, p99Ms: 2, httpErrors: 0, socketErrors: 0, proxyCpuPct: null, proxyCpuUsPerRequest: null, upstreamCpuPct: null, loadgenCpuPct: null, otherCpuPct: null,
    ...cpu,
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

t.test('over TLS, gantry against nginx: 0.5x its HTTP/2 req/s on tls-h2, 0.5x its handshakes on tls-handshakes, on the medians', async (t) => {
  const busy = { proxyCpuPct: 99, proxyCpuUsPerRequest: 100 };
  const at = (gantry: number, scenario: string) => tlsTargetLines([row('gantry', [gantry], busy), row('nginx', [10_000], busy)], scenario, 'v26.1.0');
  t.match(at(5_000, 'tls-h2'), [/^target gantry ≥ 0\.5× nginx HTTP\/2 req\/s: met \(5,000 ÷ 10,000 req\/s = 0\.50×\); CPU per request 100 µs vs 100 µs$/]);
  t.match(at(4_900, 'tls-h2'), [/: NOT met \(4,900 ÷ 10,000 req\/s = 0\.49×\)/]);
  t.match(at(5_000, 'tls-handshakes'), [/^target gantry ≥ 0\.5× nginx full handshakes\/s: met/]);
  t.match(at(4_000, 'tls-handshakes'), [/: NOT met \(4,000 ÷ 10,000 req\/s = 0\.40×\)/]);
  t.same(at(1, 'tls-keepalive-h1'), [], 'no TLS aim on HTTP/1.1 keep-alive');
  t.same(at(1, 'small-keepalive'), []);
  t.match(tlsTargetLines([row('gantry', [5_000], busy), row('nginx', [10_000], busy)], 'tls-h2', 'v24.21.0'), [/: met, indicative only \(Node v24\.21\.0/]);
});

t.test('when nginx did not use its core (the load generator was the limit), the TLS aims are judged on CPU per request', async (t) => {
  // The client held nginx to 1,400/s at 60% of its core (430 us each); gantry did 1,000/s at 100% (860 us each): req/s
  // says 0.71x, while a core of its own would give nginx twice gantry's rate.
  const lines = (gantryUs: number) => tlsTargetLines([
    row('gantry', [1_000], { proxyCpuPct: 100, proxyCpuUsPerRequest: gantryUs }),
    row('nginx', [1_400], { proxyCpuPct: 60, proxyCpuUsPerRequest: 430 }),
  ], 'tls-handshakes', 'v26.1.0');
  t.match(lines(860), [/: met, on CPU per request \(430 µs ÷ 860 µs = 0\.50×\); nginx used 60% of its core: not nginx but the load generator \(or other processes\) set its 1,400 req\/s \(gantry 1,000, 0\.71×\)$/]);
  t.match(lines(870), [/: NOT met, on CPU per request \(430 µs ÷ 870 µs = 0\.49×\)/]);
  const saturated = tlsTargetLines([row('gantry', [1_000], { proxyCpuPct: 100, proxyCpuUsPerRequest: 870 }), row('nginx', [1_400], { proxyCpuPct: 90, proxyCpuUsPerRequest: 430 })], 'tls-handshakes', 'v26.1.0');
  t.match(saturated, [/: met \(1,000 ÷ 1,400 req\/s = 0\.71×\)/], 'at 90% nginx is its own limit: the req/s decide');
  t.match(tlsTargetLines([row('gantry', [1_000], { proxyCpuPct: 100 }), row('nginx', [1_400], { proxyCpuPct: 60 })], 'tls-handshakes', 'v26.1.0'),
    [/: not judged: nginx used 60% of its core: .*, and the CPU per request is unknown$/]);
});

t.test('a TLS aim is not judged when nginx did not run or either side had errors', async (t) => {
  t.match(tlsTargetLines([row('gantry', [5_000])], 'tls-h2', 'v26.1.0'), [/: not judged: nginx did not run$/]);
  const failing = { ...row('gantry', [9_000]), socketErrors: 3 };
  t.match(tlsTargetLines([failing, row('nginx', [10_000])], 'tls-handshakes', 'v26.1.0'), [/: not judged: gantry had 3 errors$/]);
});
