/**
 * One scenario: the upstream, every system in front of it, a warm-up each, then interleaved rounds (A B C A B C …),
 * medians, and the lines under the table. bench/run.ts runs it for each scenario and writes the results.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { peerTargetLines, referenceLines, routesComparisonLine, tlsTargetLines } from './performance-targets.js';
import { pacedGenerator, type LoadGenerator, type LoadResult } from './load-generator.js';
import { cpuSnapshot, cpuUse, type Child, type Pinning, type ProcessGroup } from './processes.js';
import { consoleTable, roundLine, summarize, type RoundSample, type ScenarioOutcome, type SystemSummary } from './report.js';
import { connectionsText, type Scenario, type TlsFiles } from './scenarios/scenario.js';
import { fmt } from './stats.js';
import type { RunningSystem, System } from './systems/system.js';
import { expectOk, startUpstream } from './targets.js';

export interface Plan {
  readonly warmupS: number;
  readonly rounds: number;
  readonly durationS: number;
  readonly quick: boolean;
  /** A disturbed measurement is repeated up to this many times; then the least disturbed attempt is kept, and flagged. */
  readonly repeats: number;
}

export interface ScenarioEnv {
  readonly group: ProcessGroup;
  readonly plan: Plan;
  readonly loadgen: LoadGenerator;
  readonly pinning: Pinning;
  readonly workDir: string;
  /** The systems of the run, and why each one that cannot run on this machine is skipped. */
  readonly systems: readonly System[];
  readonly unavailable: ReadonlyMap<string, string>;
  /** Summaries of the scenarios already run in this invocation (routes-10k is judged against routes-10). */
  readonly earlier: ReadonlyMap<string, readonly SystemSummary[]>;
  readonly busy: number | null;
  readonly interrupted: () => boolean;
  /** The certificate of the TLS scenarios (made once per run when one is chosen). */
  readonly tls: TlsFiles | null;
}

/** A measurement during which processes outside the benchmark used more than this % of one core is repeated (Plan.repeats). */
const DISTURBED_PCT = 15;
const isDisturbed = (s: RoundSample) => s.otherCpuPct !== null && s.otherCpuPct > DISTURBED_PCT;

interface Live {
  readonly system: System;
  readonly running: RunningSystem;
  /** Responses it answered (warm-up and check included), for its own bookkeeping (Gantry's access log). */
  responses: number;
  /** Why it stopped taking part, when it did (its process died). */
  dropped?: string;
}

export async function runScenario(scenario: Scenario, env: ScenarioEnv): Promise<ScenarioOutcome> {
  const { group, plan, loadgen, pinning } = env;
  process.stdout.write(`\n== ${scenario.name}: ${scenario.summary}; ${connectionsText(scenario)}\n`);
  const tls = scenario.tls === undefined ? null : env.tls;
  if (scenario.tls !== undefined && tls === null) throw new Error(`${scenario.name} needs the run's TLS certificate`);
  // Upper bound on how long anything may live: if this runner dies, `timeout` ends its children after this.
  const lifetimeS = env.systems.length * (plan.warmupS + plan.rounds * (1 + plan.repeats) * (plan.durationS + 2)) + 240;
  const clientCpu = pinning.enabled ? pinning.clientCpu : undefined;

  const upstream = await startUpstream(group, scenario.upstreamBodyBytes, clientCpu, lifetimeS);
  const shown = scenario.request.headers.host ? ` (Host ${scenario.request.headers.host})` : '';
  process.stdout.write(`upstream: port ${upstream.port}, process group ${upstream.child.proc.pid}; ${scenario.upstreamBodyBytes}-byte answers; every system is sent ${scenario.request.method} ${scenario.path}${shown}\n`);
  process.stdout.write(`<dir> below: ${join(env.workDir, scenario.name)}/NAME, each system's config and logs (removed at the end, kept after an error)\n`);
  const systemLines: string[] = [];
  const say = (line: string) => { systemLines.push(line); process.stdout.write(`${line}\n`); };
  const live: Live[] = [];
  for (const system of env.systems) {
    const why = env.unavailable.get(system.name)
      ?? (scenario.gantryOnly && system.kind !== 'direct' && system.kind !== 'gantry' ? scenario.gantryOnly : null)
      ?? (tls && !system.tls ? 'the TLS scenarios compare gantry, nginx and direct; it is not set up for TLS here' : null);
    if (why) { say(`${system.name}: skipped (${why})`); continue; }
    const dir = join(env.workDir, scenario.name, system.name);
    mkdirSync(dir, { recursive: true });
    const cpu = pinning.enabled && system.pinned ? pinning.proxyCpu : undefined;
    let running: RunningSystem | undefined;
    try {
      running = await system.start({ group, dir, upstreamPort: upstream.port, scenario, cpu, maxLifetimeS: lifetimeS, tls });
      await running.ready();
      await expectOk(`${tls ? 'https' : 'http'}://127.0.0.1:${running.port}${scenario.path}`, scenario.request, scenario.upstreamBodyBytes, scenario.tls === 'http2');
    } catch (err) {
      // Gantry is what is measured: a Gantry that cannot serve fails the run. A peer that cannot is skipped.
      if (system.kind === 'gantry' || system.kind === 'direct') throw err;
      if (running?.child) await group.stop(running.child);
      say(`${system.name}: skipped (it could not serve: ${(err as Error).message.split('\n')[0]})`);
      continue;
    }
    live.push({ system, running, responses: 1 });
    const placement = system.kind === 'direct' && !running.child ? '' : `${cpu === undefined ? 'unpinned' : `pinned with taskset -c ${cpu}`}; `;
    systemLines.push(`${system.name}: ${system.summary}; ${placement}${running.setup}`);
    process.stdout.write(`${system.name}: ${system.summary}; ${placement}${running.setup}; port ${running.port}${running.child ? `, process group ${running.child.proc.pid}` : ''}\n`);
  }

  const names = live.map((l) => l.system.name);
  const planText = `warm-up ${plan.warmupS} s per system, then ${plan.rounds} rounds × ${plan.durationS} s per system, interleaved (${[...names, names[0]].join(', ')}, …)`;
  process.stdout.write(`plan: ${planText}\n`);
  const warnings: string[] = [];
  type Measured = LoadResult & Pick<RoundSample, 'proxyCpuPct' | 'proxyCpuUsPerRequest' | 'upstreamCpuPct' | 'loadgenCpuPct' | 'otherCpuPct'>;
  const url = (l: Live) => `${tls ? 'https' : 'http'}://127.0.0.1:${l.running.port}${scenario.path}`;
  /** What each system negotiated over TLS, as h2load reported it (one line per system and distinct value). */
  const negotiated = new Map<string, Set<string>>();
  /** One load run against `l`, with the CPU of every process of the benchmark accounted for; null when `l` has died. */
  const load = async (l: Live, durationS: number): Promise<Measured | null> => {
    if (env.interrupted()) throw new Error('interrupted');
    if (!upstream.child.running()) throw new Error(`the upstream exited unexpectedly (${JSON.stringify(await upstream.child.exited)})`);
    for (const other of live) {
      if (other.dropped || !other.running.child || other.running.child.running()) continue;
      other.dropped = `exited unexpectedly (${JSON.stringify(await other.running.child.exited)})`;
      warnings.push(`${other.system.name} ${other.dropped}; its remaining rounds were skipped`);
      process.stdout.write(`${other.system.name}: ${other.dropped}; dropping it from the remaining rounds\n`);
    }
    if (l.dropped) return null;
    // Every live process of the benchmark, so that idle systems count as ours and not as "other".
    const children: Child[] = [upstream.child, ...live.flatMap((x) => (x.running.child && !x.dropped ? [x.running.child] : []))];
    const before = cpuSnapshot(children);
    const measured = await loadgen.run(group, {
      url: url(l), request: scenario.request, connections: scenario.connections, durationS, cpu: clientCpu, ratePerS: scenario.ratePerS,
      tls: scenario.tls, streams: scenario.streams,
    });
    const after = cpuSnapshot(children);
    const use = cpuUse(before, after);
    l.responses += measured.requests;
    if (measured.negotiated) negotiated.set(l.system.name, (negotiated.get(l.system.name) ?? new Set()).add(measured.negotiated));
    // No response at all: wrk reports latencies of 0 then (autocannon null), which would read as the fastest row.
    const r = measured.requests > 0 ? measured : { ...measured, p50Ms: Number.NaN, p99Ms: Number.NaN };
    const proxyCpuPct = l.running.child ? (use.groups[children.indexOf(l.running.child)] ?? null) : null;
    // The CPU the system's processes used over the measurement (nginx: master and worker), per response counted.
    const proxyCpuUsPerRequest = proxyCpuPct === null || measured.requests === 0 ? null : (proxyCpuPct / 100) * (after.at - before.at) * 1000 / measured.requests;
    return { ...r, proxyCpuPct, proxyCpuUsPerRequest, upstreamCpuPct: use.groups[0] ?? null, loadgenCpuPct: use.reaped, otherCpuPct: use.other };
  };

  const width = Math.max(...live.map((l) => l.system.name.length));
  for (const l of live) {
    const w = await load(l, plan.warmupS);
    if (!w) continue;
    const errors = w.httpErrors + w.socketErrors > 0 ? `; ERRORS: ${w.httpErrors} HTTP, ${w.socketErrors} socket` : '';
    process.stdout.write(`warm-up   ${l.system.name.padEnd(width)}  ${fmt.rps(w.rps).padStart(7)} req/s (discarded${errors})\n`);
  }
  const samples: RoundSample[] = [];
  let repeated = 0;
  for (let round = 1; round <= plan.rounds; round++) {
    for (const l of live) {
      let best: RoundSample | undefined;
      for (let attempt = 0; ; attempt++) {
        const m = await load(l, plan.durationS);
        if (!m) break;
        const sample: RoundSample = { system: l.system.name, round, ...m };
        process.stdout.write(`${roundLine(sample, plan.rounds, width)}\n`);
        if (!best || (sample.otherCpuPct ?? 0) < (best.otherCpuPct ?? 0)) best = sample;
        if (!isDisturbed(sample)) break;
        if (attempt === plan.repeats) {
          if (plan.repeats > 0) process.stdout.write(`  ^ still disturbed after ${plan.repeats} repeats; keeping the least disturbed one (other ${fmt.pct(best.otherCpuPct)})\n`);
          break;
        }
        repeated++;
        process.stdout.write(`  ^ disturbed: other processes used ${fmt.pct(sample.otherCpuPct)} of a core; repeating (${attempt + 1}/${plan.repeats})\n`);
      }
      if (best) samples.push(best);
    }
  }

  const notes: string[] = [];
  for (const l of live) {
    const f = await l.running.finish(group, l.responses);
    notes.push(...f.notes);
    warnings.push(...f.warnings);
  }
  await group.stop(upstream.child);

  const summaries = live.map((l) => summarize(l.system, samples));
  if (plan.quick) warnings.unshift('quick run (--quick): short rounds, indicative only');
  if (env.busy !== null && env.busy > 10) warnings.push(`the machine was already ${Math.round(env.busy)}% busy before the run: something else competes for the CPUs`);
  for (const x of samples.filter((y) => y.requests === 0)) {
    warnings.push(`${x.system} answered no request in round ${x.round} (a response slower than the round is not counted): its latency is unknown and its req/s is 0`);
  }
  for (const s of summaries) {
    if (s.httpErrors + s.socketErrors > 0) warnings.push(`${s.system}: ${s.httpErrors} HTTP errors and ${s.socketErrors} socket errors; its numbers are not comparable`);
  }
  const disturbed = samples.filter(isDisturbed);
  if (disturbed.length) {
    warnings.push(`other processes on the machine used more than ${DISTURBED_PCT}% of a core during ${disturbed.map((x) => `round ${x.round} ${x.system} (${fmt.pct(x.otherCpuPct)})`).join(', ')}, ${plan.repeats > 0 ? `even after ${plan.repeats} repeats` : 'not repeated (--repeats 0)'}: those rounds are disturbed`);
  }
  for (const s of summaries) {
    const spread = (s.rpsMax - s.rpsMin) / s.rps;
    if (s.rounds > 1 && spread > 0.25) warnings.push(`${s.system}: req/s varied by ${Math.round(spread * 100)}% of the median across rounds (${fmt.rps(s.rpsMin)}–${fmt.rps(s.rpsMax)}); trust the median, not a single round, and consider --rounds 9`);
  }

  for (const [name, values] of negotiated) notes.push(`${name} negotiated with h2load: ${[...values].join('; ')}`);
  if (tls) notes.push(`every TLS system served one ${tls.kind} certificate, made with openssl at the start of the run`);

  const findings = referenceLines(summaries, scenario);
  if (scenario.name === 'small-keepalive') findings.push(...peerTargetLines(summaries));
  findings.push(...tlsTargetLines(summaries, scenario.name));
  if (scenario.name === 'routes-10k') findings.push(routesComparisonLine(env.earlier.get('routes-10'), summaries));

  const repeatText = repeated ? `; ${repeated} disturbed measurement${repeated === 1 ? '' : 's'} repeated` : '';
  const generator = scenario.ratePerS !== undefined ? `${pacedGenerator(env.workDir)?.name} at ${scenario.ratePerS} req/s` : scenario.tls && scenario.tls !== 'http1' ? 'h2load' : loadgen.name;
  process.stdout.write(`${notes.join('\n')}${notes.length ? '\n' : ''}\nmedians over ${plan.rounds} rounds (${generator}, ${connectionsText(scenario)}, ${plan.durationS} s each${repeatText}; pinning: ${pinning.description}):\n`);
  process.stdout.write(`${consoleTable(summaries)}\n`);
  for (const f of findings) process.stdout.write(`${f}\n`);
  for (const w of warnings) process.stdout.write(`warning: ${w}\n`);
  return { plan: `${planText}${repeatText}`, systems: systemLines, summaries, samples, findings, notes, warnings };
}
