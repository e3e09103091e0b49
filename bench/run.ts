/**
 * `npm run bench`: the same load straight at the upstream and through Gantry, in interleaved rounds, in one run.
 * bench/README.md says how to run it and how to read the numbers.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectLoadGenerator, type LoadGenerator, type LoadResult } from './load-generator.js';
import { cpuSnapshot, cpuUse, detectPinning, machineBusyPct, ProcessGroup, type Pinning } from './processes.js';
import { consoleTable, machineInfo, resultsSection, roundLine, summarize, type RoundSample, type Target } from './report.js';
import { scenarios } from './scenarios/index.js';
import { fmt } from './stats.js';
import type { Scenario } from './scenarios/scenario.js';
import { countAccessLines, expectOk, probe, startGantry, startUpstream } from './targets.js';

const HELP = `npm run bench -- [options]      (or: node dist/bench/run.js [options] after npm run build)

Runs each scenario: warm-up, then rounds of direct-to-upstream and through-Gantry load, interleaved, and prints
req/s and p50/p99 latency (medians over the rounds) with the ratio gantry/direct. Appends the result to
bench/RESULTS.md and the raw rounds to bench/out/.

Options:
  --quick             short run: 3 s warm-up, 3 rounds of 2 s (indicative only)
  --rounds N          rounds per target (default 5; quick 3)
  --duration S        seconds per round (default 5; quick 2)
  --warmup S          warm-up seconds per target (default 5; quick 3)
  --scenario NAME     run only this scenario (${scenarios.map((s) => s.name).join(', ')})
  --loadgen NAME      wrk or autocannon (default: wrk if on PATH, else autocannon)
  --no-pin            do not pin processes to CPUs with taskset
  --no-write          print only; leave bench/RESULTS.md and bench/out/ alone
  -h, --help
`;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

interface Plan { readonly warmupS: number; readonly rounds: number; readonly durationS: number; readonly quick: boolean }

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not "${value}"`);
  return n;
}

/** A measurement during which processes outside the benchmark used more than this % of one core is repeated... */
const DISTURBED_PCT = 15;
/** ...up to this many times; after that the least disturbed attempt is kept, and flagged. */
const MAX_REPEATS = 3;
const isDisturbed = (s: RoundSample) => s.otherCpuPct !== null && s.otherCpuPct > DISTURBED_PCT;

const group = new ProcessGroup();
let interrupted = false;
/** Temporary files of this run (routes.yaml, Gantry's log); removed at the end, kept after an error. */
let workDir: string | undefined;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true,
    options: {
      quick: { type: 'boolean' }, rounds: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
      scenario: { type: 'string' }, loadgen: { type: 'string' }, 'no-pin': { type: 'boolean' }, 'no-write': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(HELP); return 0; }
  const quick = values.quick ?? false;
  const plan: Plan = {
    quick,
    warmupS: positiveInt('warmup', values.warmup, quick ? 3 : 5),
    rounds: positiveInt('rounds', values.rounds, quick ? 3 : 5),
    durationS: positiveInt('duration', values.duration, quick ? 2 : 5),
  };
  const chosen = values.scenario === undefined ? scenarios : scenarios.filter((s) => s.name === values.scenario);
  if (chosen.length === 0) throw new Error(`no scenario "${values.scenario}"; there are: ${scenarios.map((s) => s.name).join(', ')}`);
  if (!existsSync(fileURLToPath(new URL('../gateway/cli.js', import.meta.url)))) throw new Error('dist/gateway/cli.js is missing: run npm run build');

  const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-'));
  workDir = dir;
  let ok = false;
  try {
    const loadgen = selectLoadGenerator(values.loadgen, dir);
    const pinning = detectPinning(values['no-pin'] ?? false);
    process.stdout.write(`load generator: ${loadgen.label} (${loadgen.reason})\npinning: ${pinning.description}\n`);
    const busy = await machineBusyPct();
    const busyText = busy === null ? 'unknown' : `${Math.round(busy)}% of all CPUs busy in the second before the run`;
    process.stdout.write(`machine load: ${busyText}\n`);
    const env: RunEnv = { plan, loadgen, pinning, workDir: dir, write: !(values['no-write'] ?? false), busyText, busy };
    for (const scenario of chosen) await runScenario(scenario, env);
    ok = true;
    return 0;
  } finally {
    await group.stopAll();
    if (ok || interrupted) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`logs kept in ${dir}\n`);
  }
}

interface RunEnv {
  readonly plan: Plan;
  readonly loadgen: LoadGenerator;
  readonly pinning: Pinning;
  readonly workDir: string;
  readonly write: boolean;
  readonly busy: number | null;
  readonly busyText: string;
}

async function runScenario(scenario: Scenario, env: RunEnv): Promise<void> {
  const { plan, loadgen, pinning, workDir, write } = env;
  const planText = `warm-up ${plan.warmupS} s per target, then ${plan.rounds} rounds × ${plan.durationS} s per target, interleaved (direct, gantry, direct, …)`;
  process.stdout.write(`\n== ${scenario.name}: ${scenario.summary}; ${scenario.connections} connections\nplan: ${planText}\n`);
  // Upper bound on how long anything may live: if this runner dies, `timeout` ends its children after this.
  const lifetimeS = 2 * plan.warmupS + 2 * plan.rounds * (1 + MAX_REPEATS) * (plan.durationS + 2) + 120;
  const clientCpu = pinning.enabled ? pinning.clientCpu : undefined;

  const upstream = await startUpstream(group, scenario.upstreamBodyBytes, clientCpu, lifetimeS);
  const gantry = await startGantry(group, workDir, scenario.routesYaml(`http://127.0.0.1:${upstream.port}`), pinning.enabled ? pinning.gatewayCpu : undefined, lifetimeS);
  const urls: Record<Target, string> = {
    direct: `http://127.0.0.1:${upstream.port}${scenario.path}`,
    gantry: `http://127.0.0.1:${gantry.port}${scenario.path}`,
  };
  process.stdout.write(`upstream: ${urls.direct} (process group ${upstream.child.proc.pid})\ngantry:   ${urls.gantry} (process group ${gantry.child.proc.pid}; access log on, to ${gantry.logFile})\n`);
  if (gantry.adminPort !== null) {
    const ready = await probe(`http://127.0.0.1:${gantry.adminPort}/readyz`);
    if (ready.status !== 200) throw new Error(`gantry /readyz answered ${ready.status}`);
  }
  await expectOk(urls.direct, scenario.upstreamBodyBytes);
  await expectOk(urls.gantry, scenario.upstreamBodyBytes);
  let gantryResponses = 1; // the check above

  type Measured = LoadResult & Pick<RoundSample, 'gantryCpuPct' | 'upstreamCpuPct' | 'loadgenCpuPct' | 'otherCpuPct'>;
  const load = async (target: Target, durationS: number): Promise<Measured> => {
    if (interrupted) throw new Error('interrupted');
    for (const c of [gantry.child, upstream.child]) {
      if (!c.running()) throw new Error(`${c.name} exited unexpectedly (${JSON.stringify(await c.exited)}); see ${c === gantry.child ? gantry.stderrFile : 'the output above'}`);
    }
    const before = cpuSnapshot([gantry.child, upstream.child]);
    const r = await loadgen.run(group, { url: urls[target], connections: scenario.connections, durationS, cpu: clientCpu });
    const use = cpuUse(before, cpuSnapshot([gantry.child, upstream.child]));
    if (target === 'gantry') gantryResponses += r.requests;
    for (const c of [gantry.child, upstream.child]) if (!c.running()) throw new Error(`${c.name} died during the ${target} run`);
    return { ...r, gantryCpuPct: use.groups[0] ?? null, upstreamCpuPct: use.groups[1] ?? null, loadgenCpuPct: use.reaped, otherCpuPct: use.other };
  };

  for (const target of ['direct', 'gantry'] as const) {
    const w = await load(target, plan.warmupS);
    process.stdout.write(`warm-up   ${target.padEnd(6)}  ${Math.round(w.rps).toLocaleString('en-US').padStart(7)} req/s (discarded)\n`);
  }
  const samples: RoundSample[] = [];
  let repeated = 0;
  for (let round = 1; round <= plan.rounds; round++) {
    for (const target of ['direct', 'gantry'] as const) {
      let best: RoundSample | undefined;
      for (let attempt = 0; ; attempt++) {
        const sample: RoundSample = { target, round, ...(await load(target, plan.durationS)) };
        process.stdout.write(`${roundLine(sample, plan.rounds)}\n`);
        if (!best || (sample.otherCpuPct ?? 0) < (best.otherCpuPct ?? 0)) best = sample;
        if (!isDisturbed(sample)) break;
        if (attempt === MAX_REPEATS) {
          process.stdout.write(`  ^ still disturbed after ${MAX_REPEATS} repeats; keeping the least disturbed one (other ${fmt.pct(best.otherCpuPct)})\n`);
          break;
        }
        repeated++;
        process.stdout.write(`  ^ disturbed: other processes used ${fmt.pct(sample.otherCpuPct)} of a core; repeating (${attempt + 1}/${MAX_REPEATS})\n`);
      }
      samples.push(best);
    }
  }

  // Stop Gantry gracefully so its asynchronous log is flushed, then check that every response was logged.
  const stopped = await group.stop(gantry.child);
  const access = await countAccessLines(gantry.logFile);
  const logMiB = statSync(gantry.logFile).size / 2 ** 20;
  await group.stop(upstream.child);
  const accessText = `access log: ${access.lines.toLocaleString('en-US')} lines (${logMiB.toFixed(0)} MiB) for ${gantryResponses.toLocaleString('en-US')} responses counted through gantry`;

  const direct = summarize('direct', samples);
  const through = summarize('gantry', samples);
  const warnings: string[] = [];
  if (plan.quick) warnings.push('quick run (--quick): short rounds, indicative only');
  if (env.busy !== null && env.busy > 10) warnings.push(`the machine was already ${Math.round(env.busy)}% busy before the run: something else competes for the CPUs`);
  for (const s of [direct, through]) {
    if (s.httpErrors + s.socketErrors > 0) warnings.push(`${s.target}: ${s.httpErrors} HTTP errors and ${s.socketErrors} socket errors; the numbers are not comparable`);
  }
  const disturbed = samples.filter(isDisturbed);
  if (disturbed.length) {
    warnings.push(`other processes on the machine used more than ${DISTURBED_PCT}% of a core during ${disturbed.map((x) => `round ${x.round} ${x.target} (${fmt.pct(x.otherCpuPct)})`).join(', ')}, even after ${MAX_REPEATS} repeats: those rounds are disturbed`);
  }
  for (const s of [direct, through]) {
    const spread = (s.rpsMax - s.rpsMin) / s.rps;
    if (spread > 0.25) warnings.push(`${s.target}: req/s varied by ${Math.round(spread * 100)}% of the median across rounds (${fmt.rps(s.rpsMin)}–${fmt.rps(s.rpsMax)}); trust the median, not a single round, and consider --rounds 9`);
  }
  if (access.lines < gantryResponses) warnings.push(`gantry logged ${access.lines} access lines for ${gantryResponses} responses`);
  if (stopped.code !== 0) warnings.push(`gantry exited with ${stopped.code ?? stopped.signal} on SIGTERM`);

  const repeatText = repeated ? `; ${repeated} disturbed measurement${repeated === 1 ? '' : 's'} repeated` : '';
  process.stdout.write(`${accessText}\n\nmedians over ${plan.rounds} rounds (${loadgen.name}, ${scenario.connections} connections, ${plan.durationS} s each${repeatText}):\n`);
  process.stdout.write(`${consoleTable(direct, through)}\n`);
  for (const w of warnings) process.stdout.write(`warning: ${w}\n`);

  if (!write) return;
  const date = new Date();
  const section = resultsSection({
    date, mode: plan.quick ? 'quick run' : 'full run', scenario, machine: machineInfo(repoRoot),
    loadGenerator: `${loadgen.label}, closed loop, keep-alive`, pinning: pinning.description, plan: `${planText}${repeatText}`,
    direct, gantry: through, samples, accessLog: accessText, warnings, machineLoad: env.busyText,
  });
  const results = join(repoRoot, 'bench', 'RESULTS.md');
  if (!existsSync(results)) {
    writeFileSync(results, '# Gantry benchmark results\n\nAppended by `npm run bench`, newest last. bench/README.md explains how to read them.\n');
  }
  appendFileSync(results, section);
  const outDir = join(repoRoot, 'bench', 'out');
  mkdirSync(outDir, { recursive: true });
  const raw = join(outDir, `${date.toISOString().replace(/[:.]/g, '-')}-${scenario.name}.json`);
  writeFileSync(raw, `${JSON.stringify({ date, scenario: scenario.name, plan, loadGenerator: loadgen.label, pinning: pinning.description, direct, gantry: through, samples, access, warnings }, null, 2)}\n`);
  process.stdout.write(`\nappended to ${results}; raw rounds in ${raw}\n`);
}

// Whatever happens, nothing started here outlives the runner.
process.on('exit', () => group.killAllSync());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping every child process\n`);
    void group.stopAll().finally(() => {
      if (workDir) rmSync(workDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

main().then(
  (code) => { process.exitCode = code; },
  async (err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    await group.stopAll();
    process.exitCode = 1;
  },
);
