import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { LoadResult } from './load-generator.js';
import { fmt, median, ratio } from './stats.js';
import { connectionsText, type Scenario } from './scenarios/scenario.js';
import type { System } from './systems/system.js';

/** One measured round against one system. */
export interface RoundSample extends LoadResult {
  readonly system: string;
  readonly round: number;
  /** CPU used by the proxy's processes / the upstream over the round, in % of one core; null where /proc is missing or there is no proxy. */
  readonly proxyCpuPct: number | null;
  /**
   * The proxy's CPU time over the round (user + system of its process group, from /proc/PID/stat) divided by the
   * responses counted: microseconds per request, per handshake where each request has its own connection.
   */
  readonly proxyCpuUsPerRequest: number | null;
  readonly upstreamCpuPct: number | null;
  /** The load generator's CPU over the round (from the runner's reaped-children time). */
  readonly loadgenCpuPct: number | null;
  /** CPU used by processes that are not part of the benchmark; above ~15% of a core the round is disturbed. */
  readonly otherCpuPct: number | null;
}

export interface SystemSummary {
  readonly system: string;
  readonly kind: System['kind'];
  readonly rounds: number;
  readonly rps: number;
  readonly rpsMin: number;
  readonly rpsMax: number;
  /** req/s of each round by round number, for ratios paired within a round (performance-targets.ts). */
  readonly rpsByRound: ReadonlyMap<number, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly httpErrors: number;
  readonly socketErrors: number;
  readonly proxyCpuPct: number | null;
  readonly proxyCpuUsPerRequest: number | null;
  readonly upstreamCpuPct: number | null;
  readonly loadgenCpuPct: number | null;
  readonly otherCpuPct: number | null;
}

function medianOrNull(values: readonly (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? median(known) : null;
}

/** Medians over the system's rounds (errors are summed: any is too many). */
export function summarize(system: Pick<System, 'name' | 'kind'>, samples: readonly RoundSample[]): SystemSummary {
  const s = samples.filter((x) => x.system === system.name);
  return {
    system: system.name, kind: system.kind, rounds: s.length,
    rps: median(s.map((x) => x.rps)),
    rpsMin: Math.min(...s.map((x) => x.rps)),
    rpsMax: Math.max(...s.map((x) => x.rps)),
    rpsByRound: new Map(s.map((x) => [x.round, x.rps])),
    // Over the rounds that had responses: a round without any has no latency (NaN).
    p50Ms: median(s.map((x) => x.p50Ms).filter(Number.isFinite)),
    p99Ms: median(s.map((x) => x.p99Ms).filter(Number.isFinite)),
    httpErrors: s.reduce((n, x) => n + x.httpErrors, 0),
    socketErrors: s.reduce((n, x) => n + x.socketErrors, 0),
    proxyCpuPct: medianOrNull(s.map((x) => x.proxyCpuPct)),
    proxyCpuUsPerRequest: medianOrNull(s.map((x) => x.proxyCpuUsPerRequest)),
    upstreamCpuPct: medianOrNull(s.map((x) => x.upstreamCpuPct)),
    loadgenCpuPct: medianOrNull(s.map((x) => x.loadgenCpuPct)),
    otherCpuPct: medianOrNull(s.map((x) => x.otherCpuPct)),
  };
}

/** The rows every ratio is taken against: direct, nginx, and the fastest Node peer that ran (by median req/s). */
export interface References {
  readonly direct?: SystemSummary;
  readonly nginx?: SystemSummary;
  readonly bestNode?: SystemSummary;
}

export function references(summaries: readonly SystemSummary[]): References {
  const measured = summaries.filter((s) => s.rounds > 0);
  const nodes = measured.filter((s) => s.kind === 'node').sort((a, b) => b.rps - a.rps);
  return { direct: measured.find((s) => s.kind === 'direct'), nginx: measured.find((s) => s.system === 'nginx'), bestNode: nodes[0] };
}

export interface MachineInfo {
  readonly nproc: string;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly memoryGiB: number;
  readonly node: string;
  /** Short commit of the working tree, with a note when it has uncommitted changes. */
  readonly commit: string;
}

function run(cmd: string, args: string[], cwd?: string): string | null {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd }).trim(); } catch { return null; }
}

export function machineInfo(repoRoot: string): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.slice(line.indexOf(':') + 1).trim();
  } catch { /* not Linux */ }
  const head = run('git', ['rev-parse', '--short', 'HEAD'], repoRoot);
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no'], repoRoot);
  return {
    nproc: run('nproc', []) ?? String(os.availableParallelism()),
    cpuModel,
    kernel: `${os.type()} ${os.release()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    commit: head ? `${head}${dirty ? ' + uncommitted changes' : ''}` : 'unknown (not a git checkout)',
  };
}

const HEAD = ['', 'req/s', 'req/s min–max', 'p50', 'p99', 'p99 − direct', 'errors', 'CPU proxy', 'CPU µs/req', 'CPU upstream', 'CPU loadgen', 'CPU other', '÷ direct', '÷ nginx', '÷ best Node'];

function rows(summaries: readonly SystemSummary[]): string[][] {
  const ref = references(summaries);
  const rpsRatio = (s: SystemSummary, to: SystemSummary | undefined) => (to && s !== to ? fmt.ratio(ratio(s.rps, to.rps)) : s === to ? '1.00×' : '–');
  return summaries.filter((s) => s.rounds > 0).map((s) => [
    s.system, fmt.rps(s.rps), `${fmt.rps(s.rpsMin)}–${fmt.rps(s.rpsMax)}`, fmt.ms(s.p50Ms), fmt.ms(s.p99Ms),
    ref.direct && s !== ref.direct ? fmt.addedMs(s.p99Ms - ref.direct.p99Ms) : '–',
    String(s.httpErrors + s.socketErrors),
    s.kind === 'direct' && s.proxyCpuPct === null ? '–' : fmt.pct(s.proxyCpuPct), fmt.us(s.proxyCpuUsPerRequest), fmt.pct(s.upstreamCpuPct), fmt.pct(s.loadgenCpuPct), fmt.pct(s.otherCpuPct),
    rpsRatio(s, ref.direct), rpsRatio(s, ref.nginx), rpsRatio(s, ref.bestNode),
  ]);
}

/** The summaries as an aligned plain-text table for the terminal. */
export function consoleTable(summaries: readonly SystemSummary[]): string {
  const all = [HEAD, ...rows(summaries)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function markdownTable(summaries: readonly SystemSummary[]): string {
  const line = (r: readonly string[]) => `| ${r.join(' | ')} |`;
  const body = rows(summaries).map((r) => (r[0]!.startsWith('gantry') ? r.map((c, i) => (i === 0 ? `**${c}**` : c)) : r));
  return [line(HEAD), line(HEAD.map((_, i) => (i === 0 ? '---' : '---:'))), ...body.map(line)].join('\n');
}

export function roundLine(s: RoundSample, rounds: number, nameWidth: number): string {
  const cpu = [
    s.proxyCpuPct === null ? '' : `proxy ${fmt.pct(s.proxyCpuPct)} (${fmt.us(s.proxyCpuUsPerRequest)}/req)`, `upstream ${fmt.pct(s.upstreamCpuPct)}`,
    `loadgen ${fmt.pct(s.loadgenCpuPct)}`, `other ${fmt.pct(s.otherCpuPct)}`,
  ].filter(Boolean).join(', ');
  const errors = s.httpErrors + s.socketErrors > 0 ? `  ERRORS: ${s.httpErrors} HTTP, ${s.socketErrors} socket` : '';
  return `round ${s.round}/${rounds}  ${s.system.padEnd(nameWidth)}  ${fmt.rps(s.rps).padStart(7)} req/s  p50 ${fmt.ms(s.p50Ms).padStart(8)}  p99 ${fmt.ms(s.p99Ms).padStart(8)}  CPU: ${cpu}${errors}`;
}

/** What one scenario's run produced (bench/run-scenario.ts): everything the report needs from it. */
export interface ScenarioOutcome {
  readonly plan: string;
  /** One line per system: how it ran, or why it was skipped. */
  readonly systems: readonly string[];
  readonly summaries: readonly SystemSummary[];
  readonly samples: readonly RoundSample[];
  /** Computed lines under the table: the reference rows, the performance targets, comparisons. */
  readonly findings: readonly string[];
  readonly notes: readonly string[];
  readonly warnings: readonly string[];
}

export interface ResultsSection extends ScenarioOutcome {
  readonly date: Date;
  readonly mode: string;
  readonly scenario: Pick<Scenario, 'name' | 'summary' | 'connections' | 'tls' | 'streams'>;
  readonly machine: MachineInfo;
  readonly loadGenerator: string;
  readonly pinning: string;
  readonly machineLoad: string;
}

/** A dated section for bench/RESULTS.md. */
export function resultsSection(r: ResultsSection): string {
  const stamp = `${r.date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const m = r.machine;
  const perRound = r.samples.map((s) => `| ${s.round} | ${s.system} | ${fmt.rps(s.rps)} | ${fmt.ms(s.p50Ms)} | ${fmt.ms(s.p99Ms)} | ${s.httpErrors + s.socketErrors} | ${s.proxyCpuPct === null ? '–' : fmt.pct(s.proxyCpuPct)} | ${fmt.us(s.proxyCpuUsPerRequest)} | ${fmt.pct(s.upstreamCpuPct)} | ${fmt.pct(s.loadgenCpuPct)} | ${fmt.pct(s.otherCpuPct)} |`);
  return `
## ${stamp} · ${r.scenario.name} · ${r.mode}

- Scenario: ${r.scenario.summary}; ${connectionsText(r.scenario)}
- Machine: nproc ${m.nproc}, ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.kernel}; ${r.machineLoad}
- Node: ${m.node}
- Load generator: ${r.loadGenerator}
- Pinning: ${r.pinning}
- Gantry commit: ${m.commit}
- Plan: ${r.plan}; medians over rounds
- Systems:
${r.systems.map((s) => `  - ${s}\n`).join('')}${r.notes.map((n) => `- ${n}\n`).join('')}${r.warnings.map((w) => `- **Warning:** ${w}\n`).join('')}
${markdownTable(r.summaries)}

${r.findings.map((f) => `- ${f}\n`).join('')}
<details><summary>Per round</summary>

| round | system | req/s | p50 | p99 | errors | CPU proxy | CPU µs/req | CPU upstream | CPU loadgen | CPU other |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${perRound.join('\n')}

</details>
`;
}
