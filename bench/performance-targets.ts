/**
 * The project's performance targets, for Gantry with every default on (routing, resilience, access log, metrics):
 * - instructions per request at most 1.10× the bare undici proxy's (bench/instructions.ts);
 * - req/s at least 1.5× fast-gateway's and 3× express + http-proxy-middleware's on small-keepalive;
 * - over TLS, against nginx (1 worker, the same certificate): HTTP/2 req/s at least 0.5× nginx's on tls-h2, full
 *   handshakes per second at least 0.5× nginx's on tls-handshakes.
 * They are judged on Node 26, the req/s ones by the medians of interleaved rounds. Each verdict here comes from the
 * figures of the run at hand (never from remembered numbers): met, not met, or not judged (a system missing, or
 * errors that make the numbers meaningless); on another Node it is shown as indicative only.
 */
import { references, type SystemSummary } from './report.js';
import { fmt, median, ratio } from './stats.js';
import type { Scenario } from './scenarios/scenario.js';

/** The Node major the targets are judged on. */
const TARGET_NODE = 26;
/** Gantry's req/s on small-keepalive, at least this many times each peer's. */
const PEER_TARGETS: readonly { readonly system: string; readonly times: number }[] = [
  { system: 'fast-gateway', times: 1.5 },
  { system: 'express', times: 3 },
];
/** Gantry against nginx over TLS, each in the scenario it is stated for. */
const TLS_TARGETS: readonly { readonly scenario: string; readonly what: string; readonly times: number }[] = [
  { scenario: 'tls-h2', what: 'HTTP/2 req/s', times: 0.5 },
  { scenario: 'tls-handshakes', what: 'full handshakes/s', times: 0.5 },
];
/** nginx using less of its core than this (%) was not its own limit: the load generator was. */
export const SATURATED_PCT = 90;
/** Gantry's instructions per request (serving, without the optimizing compiler's own), at most this many times bare-undici's. */
const INSTRUCTIONS_MAX_RATIO = 1.1;

const errorsIn = (s: SystemSummary) => s.httpErrors + s.socketErrors;

/** "met" / "NOT met", marked indicative when measured on another Node than the targets are judged on. */
function verdict(met: boolean, node: string): string {
  const major = Number(/^v(\d+)/.exec(node)?.[1]);
  const text = met ? 'met' : 'NOT met';
  return major === TARGET_NODE ? text : `${text}, indicative only (Node ${node}; the targets are judged on Node ${TARGET_NODE})`;
}

/** Why two rows cannot be compared (one missing, or errors), or null; `names` label them in that message. */
function notJudged(a: SystemSummary | undefined, b: SystemSummary | undefined, names: readonly [string, string]): string | null {
  if (!a || a.rounds === 0) return `not judged: ${names[0]} did not run`;
  if (!b || b.rounds === 0) return `not judged: ${names[1]} did not run`;
  const bad = [a, b].flatMap((s, i) => {
    if (errorsIn(s) > 0) return [`${names[i]} had ${errorsIn(s)} errors`];
    return s.rps > 0 ? [] : [`${names[i]} answered nothing`];
  });
  return bad.length ? `not judged: ${bad.join(', ')}` : null;
}

/** The reference rows, gantry's added p99 over direct, and the multi-worker ratio (every scenario). */
export function referenceLines(summaries: readonly SystemSummary[], scenario: Pick<Scenario, 'ratePerS' | 'connections'>): string[] {
  const ref = references(summaries);
  const lines: string[] = [];
  if (ref.bestNode) lines.push(`best Node peer: ${ref.bestNode.system} (${fmt.rps(ref.bestNode.rps)} req/s), the "÷ best Node" column`);
  const g = summaries.find((s) => s.system === 'gantry' && s.rounds > 0);
  if (g && ref.direct) {
    const figures = `${fmt.addedMs(g.p99Ms - ref.direct.p99Ms)} (${fmt.ms(g.p99Ms)} vs ${fmt.ms(ref.direct.p99Ms)})`;
    lines.push(scenario.ratePerS === undefined
      ? `gantry added p99 over direct: ${figures}, at saturation (closed loop): queueing included; paced-latency measures it below saturation`
      : `gantry added p99 over direct below saturation (${fmt.rps(scenario.ratePerS)} req/s over ${scenario.connections} connections): ${notJudged(g, ref.direct, ['gantry', 'direct']) ?? figures}`);
  }
  const one = summaries.find((s) => s.system === 'gantry-unpinned' && s.rounds > 0);
  for (const many of summaries.filter((s) => /^gantry-\d+w$/.test(s.system) && s.rounds > 0)) {
    if (one) lines.push(`${many.system} ÷ gantry-unpinned: ${fmt.ratio(ratio(many.rps, one.rps))} (${fmt.rps(many.rps)} vs ${fmt.rps(one.rps)} req/s; both on every CPU, sharing CPU 1 with the upstream and the load generator when pinning is on)`);
  }
  return lines;
}

/** Gantry's req/s against each peer of the targets, for small-keepalive (the scenario they are stated for). */
export function peerTargetLines(summaries: readonly SystemSummary[], node: string = process.version): string[] {
  const g = summaries.find((s) => s.system === 'gantry');
  return PEER_TARGETS.map(({ system, times }) => {
    const head = `target gantry ≥ ${times}× ${system} req/s`;
    const peer = summaries.find((s) => s.system === system);
    const skip = notJudged(g, peer, ['gantry', system]);
    if (skip) return `${head}: ${skip}`;
    const r = ratio(g!.rps, peer!.rps);
    return `${head}: ${verdict(r >= times, node)} (${fmt.rps(g!.rps)} ÷ ${fmt.rps(peer!.rps)} req/s = ${fmt.ratio(r)})${pairedRatios(g!, peer!)}`;
  });
}

/**
 * Gantry against nginx over TLS (tls-h2, tls-handshakes; no line for other scenarios). On the req/s medians when
 * nginx used its core (its rounds measured nginx); when it did not, something else set nginx's rate (the load
 * generator: h2load's full handshakes cost the client more CPU than nginx's, bench/README.md; or neighbours on the
 * machine), and a req/s ratio would flatter gantry: the verdict is then on the CPU each spends per request, the rate
 * each would reach on a core of its own.
 */
export function tlsTargetLines(summaries: readonly SystemSummary[], scenario: string, node: string = process.version): string[] {
  return TLS_TARGETS.filter((t) => t.scenario === scenario).map(({ what, times }) => {
    const head = `target gantry ≥ ${times}× nginx ${what}`;
    const g = summaries.find((s) => s.system === 'gantry');
    const n = summaries.find((s) => s.system === 'nginx');
    const skip = notJudged(g, n, ['gantry', 'nginx']);
    if (skip) return `${head}: ${skip}`;
    const rps = ratio(g!.rps, n!.rps);
    const cpu = `CPU per request ${fmt.us(g!.proxyCpuUsPerRequest)} vs ${fmt.us(n!.proxyCpuUsPerRequest)}`;
    if (n!.proxyCpuPct === null || n!.proxyCpuPct >= SATURATED_PCT) {
      return `${head}: ${verdict(rps >= times, node)} (${fmt.rps(g!.rps)} ÷ ${fmt.rps(n!.rps)} req/s = ${fmt.ratio(rps)})${pairedRatios(g!, n!)}; ${cpu}`;
    }
    const limited = `nginx used ${fmt.pct(n!.proxyCpuPct)} of its core: not nginx but the load generator (or other processes) set its ${fmt.rps(n!.rps)} req/s (gantry ${fmt.rps(g!.rps)}, ${fmt.ratio(rps)})`;
    if (g!.proxyCpuUsPerRequest === null || n!.proxyCpuUsPerRequest === null) return `${head}: not judged: ${limited}, and the CPU per request is unknown`;
    const perCore = ratio(n!.proxyCpuUsPerRequest, g!.proxyCpuUsPerRequest);
    return `${head}: ${verdict(perCore >= times, node)}, on CPU per request (${fmt.us(n!.proxyCpuUsPerRequest)} ÷ ${fmt.us(g!.proxyCpuUsPerRequest)} = ${fmt.ratio(perCore)}); ${limited}`;
  });
}

/**
 * The ratio within each round, where the two systems ran seconds apart: a neighbour that slows the proxy CPU for a
 * few rounds (the shared VM) moves both, so these are steadier than the ratio of medians. Shown beside the verdict,
 * which stays on the medians.
 */
function pairedRatios(a: SystemSummary, b: SystemSummary): string {
  const within = [...a.rpsByRound].flatMap(([round, rps]) => {
    const other = b.rpsByRound.get(round);
    return other ? [ratio(rps, other)] : [];
  });
  if (within.length < 2) return '';
  return `; per round: median ${fmt.ratio(median(within))}, ${fmt.ratio(Math.min(...within))}–${fmt.ratio(Math.max(...within))}`;
}

/**
 * Gantry at 10 000 routes against 10 (two scenarios of the same invocation), on raw req/s; the drop of the
 * gantry ÷ direct ratio is shown too, since it discounts drift of the machine between the two runs.
 */
export function routesComparisonLine(small: readonly SystemSummary[] | undefined, big: readonly SystemSummary[]): string {
  const head = 'routes-10k against routes-10';
  if (!small) return `${head}: routes-10 did not run in this invocation (--scenario routes-10,routes-10k)`;
  const a = small.find((s) => s.system === 'gantry');
  const b = big.find((s) => s.system === 'gantry');
  const skip = notJudged(b, a, ['gantry at routes-10k', 'gantry at routes-10']);
  if (skip) return `${head}: ${skip}`;
  const da = references(small).direct;
  const db = references(big).direct;
  const relative = da && db ? `; relative to direct: ${fmt.ratio(ratio(b!.rps, db.rps))} vs ${fmt.ratio(ratio(a!.rps, da.rps))}, ${pctChange(1 - ratio(b!.rps, db.rps) / ratio(a!.rps, da.rps))}` : '';
  return `${head}: gantry ${fmt.rps(b!.rps)} vs ${fmt.rps(a!.rps)} req/s, ${pctChange(1 - b!.rps / a!.rps)}${relative}`;
}

function pctChange(drop: number): string {
  return drop >= 0 ? `${(drop * 100).toFixed(1)}% fewer` : `${(-drop * 100).toFixed(1)}% more`;
}

/** Gantry's instructions per request against bare-undici's (serving counts, from the same invocation). */
export function instructionsTargetLine(gantry: number, bareUndici: number, node: string = process.version): string {
  const r = gantry / bareUndici;
  const per = (n: number) => `${Math.round(n / 1000)}k`;
  return `target gantry ≤ ${INSTRUCTIONS_MAX_RATIO.toFixed(2)}× bare-undici instructions per request: ${verdict(r <= INSTRUCTIONS_MAX_RATIO, node)} (${per(gantry)} ÷ ${per(bareUndici)} = ${fmt.ratio(r)})`;
}
