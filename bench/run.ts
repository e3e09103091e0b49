/**
 * `npm run bench`: the same load straight at the upstream, through Gantry and through the peer proxies (nginx,
 * HAProxy, three Node proxies), in interleaved rounds, in one run. bench/README.md says how to run it and how to read
 * the numbers.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { OVERLOAD, pacedGenerator, selectLoadGenerator } from './load-generator.js';
import { detectPinning, findExecutable, machineBusyPct, ProcessGroup, stopChildrenOnExit } from './processes.js';
import { machineInfo, resultsSection, type SystemSummary } from './report.js';
import { runScenario, type Plan, type ScenarioEnv } from './run-scenario.js';
import { scenarios } from './scenarios/table.js';
import { selectSystems, systemNames } from './systems/table.js';
import { tail } from './targets.js';
import { keyType, makeCertificate } from './tls-certificate.js';

const HELP = `npm run bench -- [options]      (or: node dist/bench/run.js [options] after npm run build)

Runs each scenario: the upstream, then every system in front of it; a warm-up per system, then rounds of the same
load against each system in turn (direct, gantry, nginx, …, direct, gantry, …), and prints req/s, p50/p99 latency and
CPU (medians over the rounds) with the ratios to direct, to nginx and to the best Node peer, and the project's req/s
targets (small-keepalive: gantry ≥ 1.5× fast-gateway, ≥ 3× express) as met / not met. Appends the result to
bench/RESULTS.md and the raw rounds to bench/out/.

Options:
  --quick             short run: 3 s warm-up, 3 rounds of 2 s (indicative only)
  --rounds N          rounds per system (default 5; quick 3)
  --duration S        seconds per round (default 5; quick 2)
  --warmup S          warm-up seconds per system (default 5; quick 3)
  --repeats N         repeat a measurement disturbed by other processes up to N times (default 3); 0 keeps
                      every first one, flagged: for a machine that is never quiet
  --scenario A,B      run only these scenarios (default: all, in this order):
                      ${scenarios.map((s) => s.name).join(', ')}
  --systems A,B       run only these systems (default: all that are available); direct always runs, as every
                      ratio is taken against it. Systems:
                      ${systemNames}
  --workers N         also run gantry-unpinned and gantry-Nw (gantry start --workers N), both on every CPU:
                      1 against N workers, placed alike
  --cert ecdsa|rsa    the certificate of the TLS scenarios (tls-*): ECDSA P-256 (default) or RSA 2048, made
                      with openssl at the start of the run and served by gantry, nginx and direct alike
  --no-install        do not apt-get install a missing nginx, haproxy, h2load or wrk (the default, as root, tries once)
  --loadgen NAME      wrk or autocannon (default: wrk if on PATH, else autocannon)
  --no-pin            do not pin processes to CPUs with taskset
  --no-write          print only; leave bench/RESULTS.md and bench/out/ alone
  -h, --help
`;

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not "${value}"`);
  return n;
}

const group = new ProcessGroup();
let interrupted = false;
/** Temporary files of this run (configs, logs); removed at the end, kept after an error. */
let workDir: string | undefined;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true,
    options: {
      quick: { type: 'boolean' }, rounds: { type: 'string' }, repeats: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
      scenario: { type: 'string' }, systems: { type: 'string' }, workers: { type: 'string' }, 'no-install': { type: 'boolean' },
      loadgen: { type: 'string' }, 'no-pin': { type: 'boolean' }, 'no-write': { type: 'boolean' }, cert: { type: 'string' },
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
    repeats: values.repeats === '0' ? 0 : positiveInt('repeats', values.repeats, 3),
  };
  const wanted = values.scenario?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of wanted ?? []) {
    if (!scenarios.some((s) => s.name === name)) throw new Error(`no scenario "${name}"; there are: ${scenarios.map((s) => s.name).join(', ')}`);
  }
  let chosen = wanted === undefined ? scenarios : scenarios.filter((s) => wanted.includes(s.name));
  const workers = values.workers === undefined ? undefined : positiveInt('workers', values.workers, 2);
  if (workers === 1) throw new Error('--workers must be 2 or more: gantry-unpinned is the 1-process run it is compared with');
  const systems = selectSystems(values.systems, workers);
  const certType = keyType(values.cert);
  if (!existsSync(fileURLToPath(new URL('../gateway/cli.js', import.meta.url)))) throw new Error('dist/gateway/cli.js is missing: run npm run build');

  const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-'));
  workDir = dir;
  let ok = false;
  try {
    // A TLS scenario over HTTP/1.1 keep-alive is measured with wrk (autocannon is not set up for TLS): install it first.
    const wrk = chosen.some((s) => s.tls === 'http1') && values.loadgen !== 'autocannon' && !findExecutable('wrk') ? ['wrk'] : [];
    // A paced scenario measures latency with h2load (load-generator.ts says why), and the other TLS scenarios are
    // measured with it: Debian's nghttp2-client.
    const needsH2load = (s: (typeof scenarios)[number]) => s.ratePerS !== undefined || (s.tls !== undefined && s.tls !== 'http1');
    const h2load = chosen.some(needsH2load) && !findExecutable('h2load') ? ['nghttp2-client'] : [];
    // "Installs or skips": one apt-get for the servers and clients this run wants and lacks, then one line per system that cannot run.
    const wanted = systems.filter((s) => chosen.some((c) => c.tls === undefined || s.tls));
    const missing = wanted.flatMap((s) => (s.aptPackage !== undefined && s.unavailable() !== null ? [s.aptPackage] : []));
    const noInstall = await installPackages([...missing, ...h2load, ...wrk], values['no-install'] ?? false, join(dir, 'apt-get.log'));
    const loadgen = selectLoadGenerator(values.loadgen, dir);
    const pinning = detectPinning(values['no-pin'] ?? false);
    process.stdout.write(`load generator: ${loadgen.label} (${loadgen.reason})\npinning: ${pinning.description}\n`);
    const skip = (which: (s: (typeof scenarios)[number]) => boolean, why: string) => {
      const skipped = chosen.filter(which);
      if (skipped.length) process.stdout.write(`${skipped.map((s) => s.name).join(', ')}: skipped (${why})\n`);
      chosen = chosen.filter((s) => !which(s));
    };
    if (!findExecutable('h2load')) skip(needsH2load, `h2load not available: ${noInstall ?? 'not installed'}; apt-get install -y nghttp2-client`);
    if (loadgen.name !== 'wrk') skip((s) => s.tls === 'http1', `HTTPS keep-alive is measured with wrk: ${loadgen.reason}; apt-get install -y wrk`);
    const tls = chosen.some((s) => s.tls !== undefined) ? makeCertificate(dir, certType) : null;
    const unavailable = new Map<string, string>();
    for (const s of systems) {
      const why = s.unavailable();
      if (why) unavailable.set(s.name, noInstall && s.kind === 'server' ? `${why}; ${noInstall}` : why);
    }
    for (const [name, why] of unavailable) process.stdout.write(`${name}: skipped (${why})\n`);

    const busy = await machineBusyPct();
    const busyText = busy === null ? 'unknown' : `${Math.round(busy)}% of all CPUs busy in the second before the run`;
    process.stdout.write(`machine load: ${busyText}\n`);
    const earlier = new Map<string, readonly SystemSummary[]>();
    const env: ScenarioEnv = { group, plan, loadgen, pinning, workDir: dir, systems, unavailable, earlier, busy, interrupted: () => interrupted, tls };
    for (const scenario of chosen) {
      const r = await runScenario(scenario, env);
      earlier.set(scenario.name, r.summaries);
      if (values['no-write']) continue;
      const date = new Date();
      const section = resultsSection({
        ...r, date, mode: plan.quick ? 'quick run' : 'full run', scenario, machine: machineInfo(repoRoot),
        loadGenerator: generatorText(scenario, loadgen.label, dir), pinning: pinning.description, machineLoad: busyText,
      });
      const results = join(repoRoot, 'bench', 'RESULTS.md');
      if (!existsSync(results)) {
        writeFileSync(results, '# Gantry benchmark results\n\nAppended by the benchmarks, newest last. bench/README.md explains how to read them.\n');
      }
      appendFileSync(results, section);
      const outDir = join(repoRoot, 'bench', 'out');
      mkdirSync(outDir, { recursive: true });
      const raw = join(outDir, `${date.toISOString().replace(/[:.]/g, '-')}-${scenario.name}.json`);
      writeFileSync(raw, `${JSON.stringify({ date, scenario: scenario.name, settings: plan, loadGenerator: loadgen.label, pinning: pinning.description, ...r }, null, 2)}\n`);
      process.stdout.write(`\nappended to ${results}; raw rounds in ${raw}\n`);
    }
    ok = true;
    return 0;
  } finally {
    await group.stopAll();
    if (ok || interrupted) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`logs kept in ${dir}\n`);
  }
}

/** The load generator line of a scenario's section in RESULTS.md. */
function generatorText(s: (typeof scenarios)[number], label: string, dir: string): string {
  if (s.ratePerS !== undefined) return `${pacedGenerator(dir)?.label}, paced at ${s.ratePerS} req/s over all connections, keep-alive`;
  const h2load = () => pacedGenerator(dir)?.label.replace(/ \(.*$/, '') ?? 'h2load';
  switch (s.tls) {
    case undefined: return `${label}, closed loop, keep-alive`;
    case 'http1': return `${label}, closed loop, keep-alive, over TLS`;
    case 'http2': return `${h2load()}, closed loop, HTTP/2 over TLS (ALPN h2), each run sized from the system's last rate`;
    case 'resumed-sessions': return `${h2load()}, closed loop, HTTP/1.1 over TLS, Connection: close on every request, sessions resumed, each run sized from the system's last rate`;
    case 'new-sessions': return `${h2load()}, a new client (no TLS session to resume) per request, opened at ${OVERLOAD}× the system's last rate, HTTP/1.1 over TLS`;
  }
}

/** apt-get gets this long (the lock wait included) before the run goes on without the servers it did not bring. */
const INSTALL_TIMEOUT_S = 300;

/**
 * "Installs or skips": when the run wants nginx, HAProxy or h2load and they are missing, and it runs as root with
 * apt-get, one non-interactive `apt-get install -y` for all of them, bounded by `timeout`. Returns why it did not
 * install, or null when it tried (the caller checks again what is there now). Nothing is started as a service: this
 * only puts the binaries in place (Debian containers forbid service starts via policy-rc.d; on a full system the
 * packaged service may start on port 80, which the benchmark does not use).
 */
async function installPackages(packages: readonly string[], noInstall: boolean, logFile: string): Promise<string | null> {
  if (packages.length === 0) return null;
  if (noInstall) return '--no-install given';
  if (process.getuid?.() !== 0) return 'not running as root';
  const aptGet = findExecutable('apt-get');
  if (!aptGet) return 'no apt-get on this machine';
  const timeout = findExecutable('timeout');
  const command = [aptGet, 'install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=60', ...packages];
  const argv = timeout ? [timeout, '--kill-after=10', `${INSTALL_TIMEOUT_S}s`, ...command] : command;
  process.stdout.write(`installing ${packages.join(' ')}: apt-get install -y (non-interactive, up to ${INSTALL_TIMEOUT_S} s; --no-install skips this; log in ${logFile})\n`);
  const out = openSync(logFile, 'w');
  let code: number | null;
  try {
    code = await new Promise<number | null>((resolve) => {
      const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', out, out], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      proc.once('error', () => resolve(null));
      proc.once('exit', (c) => resolve(c));
    });
  } finally {
    closeSync(out);
  }
  if (code !== 0) {
    const why = code === 124 ? `timed out after ${INSTALL_TIMEOUT_S} s` : `exited with ${code ?? 'an error'}`;
    process.stdout.write(`apt-get install ${why}:\n${tail(logFile, 5)}`);
    return `apt-get install ${why} (apt-get update first?)`;
  }
  return null;
}

stopChildrenOnExit(group, () => workDir, () => { interrupted = true; });

main().then(
  (code) => { process.exitCode = code; },
  async (err: Error) => {
    process.stderr.write(`bench: ${err.message}\n`);
    await group.stopAll();
    process.exitCode = 1;
  },
);
