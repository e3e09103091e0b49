import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { LoadResult } from './load-generator.js';
import { fmt, median, ratio } from './stats.js';

export type Target = 'direct' | 'gantry';

/** One measured round against one target. */
export interface RoundSample extends LoadResult {
  readonly target: Target;
  readonly round: number;
  /** CPU used by the Gantry / upstream process over the round, in % of one core; null where /proc is missing. */
  readonly gantryCpuPct: number | null;
  readonly upstreamCpuPct: number | null;
  /** The load generator's CPU over the round (from the runner's reaped-children time). */
  readonly loadgenCpuPct: number | null;
  /** CPU used by processes that are not part of the benchmark; above ~15% of a core the round is disturbed. */
  readonly otherCpuPct: number | null;
}

export interface TargetSummary {
  readonly target: Target;
  readonly rounds: number;
  readonly rps: number;
  readonly rpsMin: number;
  readonly rpsMax: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly httpErrors: number;
  readonly socketErrors: number;
  readonly gantryCpuPct: number | null;
  readonly upstreamCpuPct: number | null;
  readonly loadgenCpuPct: number | null;
  readonly otherCpuPct: number | null;
}

function medianOrNull(values: readonly (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? median(known) : null;
}

/** Medians over the rounds (errors are summed: any is too many). */
export function summarize(target: Target, samples: readonly RoundSample[]): TargetSummary {
  const s = samples.filter((x) => x.target === target);
  return {
    target, rounds: s.length,
    rps: median(s.map((x) => x.rps)),
    rpsMin: Math.min(...s.map((x) => x.rps)),
    rpsMax: Math.max(...s.map((x) => x.rps)),
    p50Ms: median(s.map((x) => x.p50Ms)),
    p99Ms: median(s.map((x) => x.p99Ms)),
    httpErrors: s.reduce((n, x) => n + x.httpErrors, 0),
    socketErrors: s.reduce((n, x) => n + x.socketErrors, 0),
    gantryCpuPct: target === 'gantry' ? medianOrNull(s.map((x) => x.gantryCpuPct)) : null,
    upstreamCpuPct: medianOrNull(s.map((x) => x.upstreamCpuPct)),
    loadgenCpuPct: medianOrNull(s.map((x) => x.loadgenCpuPct)),
    otherCpuPct: medianOrNull(s.map((x) => x.otherCpuPct)),
  };
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

const HEAD = ['', 'req/s', 'req/s min–max', 'p50', 'p99', 'errors', 'CPU gantry', 'CPU upstream', 'CPU loadgen', 'CPU other'];

function rows(direct: TargetSummary, gantry: TargetSummary): string[][] {
  const row = (s: TargetSummary) => [
    s.target, fmt.rps(s.rps), `${fmt.rps(s.rpsMin)}–${fmt.rps(s.rpsMax)}`, fmt.ms(s.p50Ms), fmt.ms(s.p99Ms), String(s.httpErrors + s.socketErrors),
    s.target === 'gantry' ? fmt.pct(s.gantryCpuPct) : '–', fmt.pct(s.upstreamCpuPct), fmt.pct(s.loadgenCpuPct), fmt.pct(s.otherCpuPct),
  ];
  return [
    row(direct),
    row(gantry),
    ['gantry/direct', fmt.ratio(ratio(gantry.rps, direct.rps)), '', fmt.ratio(ratio(gantry.p50Ms, direct.p50Ms)), fmt.ratio(ratio(gantry.p99Ms, direct.p99Ms)), '', '', '', '', ''],
  ];
}

/** The summary as an aligned plain-text table for the terminal. */
export function consoleTable(direct: TargetSummary, gantry: TargetSummary): string {
  const all = [HEAD, ...rows(direct, gantry)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function markdownTable(direct: TargetSummary, gantry: TargetSummary): string {
  const line = (r: readonly string[]) => `| ${r.join(' | ')} |`;
  const body = rows(direct, gantry).map((r, i) => (i === 2 ? [`**${r[0]}**`, ...r.slice(1).map((c) => (c ? `**${c}**` : ''))] : r));
  return [line(HEAD), line(HEAD.map((_, i) => (i === 0 ? '---' : '---:'))), ...body.map(line)].join('\n');
}

export function roundLine(s: RoundSample, rounds: number): string {
  const cpu = [
    s.target === 'gantry' ? `gantry ${fmt.pct(s.gantryCpuPct)}` : '', `upstream ${fmt.pct(s.upstreamCpuPct)}`,
    `loadgen ${fmt.pct(s.loadgenCpuPct)}`, `other ${fmt.pct(s.otherCpuPct)}`,
  ].filter(Boolean).join(', ');
  const errors = s.httpErrors + s.socketErrors > 0 ? `  ERRORS: ${s.httpErrors} HTTP, ${s.socketErrors} socket` : '';
  return `round ${s.round}/${rounds}  ${s.target.padEnd(6)}  ${fmt.rps(s.rps).padStart(7)} req/s  p50 ${fmt.ms(s.p50Ms).padStart(8)}  p99 ${fmt.ms(s.p99Ms).padStart(8)}  CPU: ${cpu}${errors}`;
}

export interface ResultsSection {
  readonly date: Date;
  readonly mode: string;
  readonly scenario: { name: string; summary: string; connections: number };
  readonly machine: MachineInfo;
  readonly loadGenerator: string;
  readonly pinning: string;
  readonly plan: string;
  readonly direct: TargetSummary;
  readonly gantry: TargetSummary;
  readonly samples: readonly RoundSample[];
  readonly accessLog: string;
  readonly machineLoad: string;
  readonly warnings: readonly string[];
}

/** A dated section for bench/RESULTS.md. */
export function resultsSection(r: ResultsSection): string {
  const stamp = `${r.date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const m = r.machine;
  const perRound = r.samples.map((s) => `| ${s.round} | ${s.target} | ${fmt.rps(s.rps)} | ${fmt.ms(s.p50Ms)} | ${fmt.ms(s.p99Ms)} | ${s.httpErrors + s.socketErrors} | ${s.target === 'gantry' ? fmt.pct(s.gantryCpuPct) : '–'} | ${fmt.pct(s.upstreamCpuPct)} | ${fmt.pct(s.loadgenCpuPct)} | ${fmt.pct(s.otherCpuPct)} |`);
  return `
## ${stamp} · ${r.scenario.name} · ${r.mode}

- Scenario: ${r.scenario.summary}; ${r.scenario.connections} connections
- Machine: nproc ${m.nproc}, ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.kernel}; ${r.machineLoad}
- Node: ${m.node}
- Load generator: ${r.loadGenerator}
- Pinning: ${r.pinning}
- Gantry: commit ${m.commit}; \`node dist/gateway/cli.js start -c routes.yaml\`, log to a file; ${r.accessLog}
- Plan: ${r.plan}; medians over rounds
${r.warnings.map((w) => `- **Warning:** ${w}\n`).join('')}
${markdownTable(r.direct, r.gantry)}

<details><summary>Per round</summary>

| round | target | req/s | p50 | p99 | errors | CPU gantry | CPU upstream | CPU loadgen | CPU other |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|
${perRound.join('\n')}

</details>
`;
}
