/**
 * `npm run bench:instructions`: CPU instructions per request of a proxy, counted by valgrind's callgrind. Unlike
 * req/s, the count does not move when other processes share the machine, so two builds (or a proxy and an anchor)
 * can be compared on a busy machine. It is a complement to `npm run bench`, not a replacement: it counts
 * instructions in user space only (the syscalls, the same four per request for every system here, are not in it)
 * and says nothing about latency.
 *
 *   node dist/bench/instructions.js [--requests N] [--warmup-factor K] [--keep] [SYSTEM ...]
 *   --keep: leave each system's callgrind dump in its temporary folder (printed) for callgrind_annotate
 *   SYSTEM: gantry, gantry-no-access-log, gantry-jwt, gantry-rate-limit, gantry-traced-0.01, gantry-traced-1, bare-http-proxy, bare-undici, fast-gateway,
 *   express (default: gantry bare-undici); gantry-jwt and gantry-rate-limit are gantry with one policy on its route
 *   (bench/policy-systems.ts)
 *
 * For each system: an upstream (bench/node-servers.ts, 100-byte answers) starts, the proxy starts under
 * `valgrind --tool=callgrind --instr-atstart=no`, autocannon (10 connections) sends K×N warm-up requests so the JIT
 * settles, then instrumentation is switched on and zeroed, N requests are sent, and the counters are dumped. The
 * report splits the total into V8's optimizing compiler (still compiling during the window: the JIT's own work, which
 * dies down in a long run) and the rest, the cost of serving the requests. With gantry and bare-undici both measured
 * (the default), it judges the instructions target on the serving counts (bench/performance-targets.ts). Needs
 * valgrind (Debian: valgrind).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { instructionsTargetLine } from './performance-targets.js';
import { jwtPolicy, rateLimitPolicy, withPolicy, type BenchPolicy } from './policy-systems.js';
import { routesYaml } from './scenarios/scenario.js';

const require = createRequire(import.meta.url);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const children = new Set<ChildProcess>();
/** Each child leads its own process group (timeout -> valgrind -> node): the whole group is killed. */
function killAll(): void {
  for (const c of children) try { process.kill(-(c.pid as number), 'SIGKILL'); } catch { /* gone */ }
  children.clear();
}
process.on('exit', killAll);

/** Where V8's optimizing compilers spend their instructions (callgrind names them; JIT code itself is unnamed). */
const COMPILER = /compiler::|maglev|Maglev|turboshaft|Turboshaft|Zone::|RegisterAllocator|LinearScan|InstructionSelector|CodeGenerator|Assembler|Deoptimiz|OptimizedCompilationJob/;

interface Proxy {
  /** Its command line, and the headers every request carries (a policy's credential); may start a helper first. */
  readonly launch: (upstream: string, dir: string) => Promise<{ argv: string[]; headers: Readonly<Record<string, string>>; env?: Readonly<Record<string, string>> }>;
  readonly port: (child: ChildProcess, dir: string) => Promise<number>;
  readonly logsToStdout: boolean;
}

/** The first stdout line of a helper (`{"port":N,...}`). */
function announced<T extends { port: number }>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as T);
    });
    child.once('exit', () => reject(new Error('exited before announcing its port')));
  });
}

const announcedPort = async (child: ChildProcess): Promise<number> => (await announced(child)).port;

async function startedPort(logFile: string): Promise<number> {
  for (let i = 0; i < 600; i++) {
    const m = /"started".*?"listen":\{[^}]*"port":(\d+)/.exec(readFileSync(logFile, 'utf8'));
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('gantry did not log "started" within 60 s under valgrind');
}

/**
 * Gantry with the scenario's one route, with the access log or without, with a policy on the route or not, with
 * spans exported to an OTLP sink at a sample ratio (`tracing`) or not.
 */
function gantry(access: boolean, policy?: () => Promise<BenchPolicy>, tracing?: { sampleRatio: number }): Proxy {
  return {
    launch: async (upstream, dir) => {
      const file = join(dir, 'routes.yaml');
      let yaml = routesYaml({ name: 'instructions' }, upstream);
      if (tracing !== undefined) yaml += `tracing: { spans: true, sampleRatio: ${tracing.sampleRatio}, endpoint: "${await otlpSink()}" }\n`;
      const p = policy === undefined ? undefined : await policy();
      writeFileSync(file, p === undefined ? (access ? yaml : yaml.replace('access: true', 'access: false')) : withPolicy(yaml, p));
      // Under valgrind a second of the clock holds ~50 times fewer requests than live, so an export every 5 s would cost
      // each request ~50 times its share: spans are exported in full batches instead, as on a gateway under load.
      const env = tracing === undefined ? undefined : { OTEL_BSP_SCHEDULE_DELAY: '3600000' };
      return { argv: [here('../gateway/cli.js'), 'start', '-c', file], headers: p?.headers ?? {}, env };
    },
    port: (_child, dir) => startedPort(join(dir, 'gantry.log')),
    logsToStdout: true,
  };
}

const peer = (name: string): Proxy => ({
  launch: async (upstream) => ({ argv: [here('./node-servers.js'), name, upstream], headers: {} }),
  port: (child) => announcedPort(child), logsToStdout: false,
});

/** An OTLP/HTTP sink in its own process (killed with the others after the system's run): its traces URL. */
async function otlpSink(): Promise<string> {
  const child = spawn(process.execPath, [here('./node-servers.js'), 'otlp-sink'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children.add(child);
  return `http://127.0.0.1:${await announcedPort(child)}/v1/traces`;
}

/** A JWKS server in its own process (killed with the others after the system's run), and a token it signed. */
async function jwks(): Promise<BenchPolicy> {
  const child = spawn(process.execPath, [here('./jwks-server.js')], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children.add(child);
  const { port, token } = await announced<{ port: number; token: string }>(child);
  return jwtPolicy(`http://127.0.0.1:${port}/jwks.json`, token);
}

const SYSTEMS: Record<string, Proxy> = {
  'gantry': gantry(true),
  'gantry-no-access-log': gantry(false),
  'gantry-jwt': gantry(true, jwks),
  'gantry-rate-limit': gantry(true, async () => rateLimitPolicy),
  'gantry-traced-0.01': gantry(true, undefined, { sampleRatio: 0.01 }),
  'gantry-traced-1': gantry(true, undefined, { sampleRatio: 1 }),
  'bare-http-proxy': peer('bare-http-proxy'),
  'bare-undici': peer('bare-undici'),
  'fast-gateway': peer('fast-gateway'),
  'express': peer('express'),
};

function load(port: number, requests: number, headers: Readonly<Record<string, string>>): number {
  const h = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}=${value}`]);
  const out = execFileSync(process.execPath, [require.resolve('autocannon/autocannon.js'), '-c', '10', '-a', String(requests), ...h, '-j', `http://127.0.0.1:${port}/bench`],
    { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'ignore'], timeout: 600_000 });
  return (JSON.parse(out) as { '2xx': number })['2xx'];
}

/** Instructions per request from callgrind's dump files in `dir`: [serving, compiler]. */
function countInstructions(dir: string): [number, number] {
  let best: [number, number] = [0, 0];
  // Only complete dumps (the one callgrind_control asked for ends with its totals line).
  for (const f of readdirSync(dir).filter((f) => f.startsWith('callgrind.out') && /^totals: /m.test(readFileSync(join(dir, f), 'utf8')))) {
    const annotated = execFileSync('callgrind_annotate', ['--threshold=100', join(dir, f)], { encoding: 'utf8', maxBuffer: 1 << 28 });
    let total = 0;
    let compiler = 0;
    for (const line of annotated.split('\n')) {
      const m = /^\s*([\d,]+) \(/.exec(line);
      if (!m || line.includes('PROGRAM TOTALS')) continue;
      const n = Number((m[1] as string).replaceAll(',', ''));
      total += n;
      if (COMPILER.test(line)) compiler += n;
    }
    if (total > best[0] + best[1]) best = [total - compiler, compiler];
  }
  return best;
}

/** One system's table line, and its serving instructions per request. */
async function measure(name: string, proxy: Proxy, requests: number, warmupFactor: number): Promise<{ line: string; serving: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-instructions-'));
  try {
    const upstream = spawn(process.execPath, [here('./node-servers.js'), 'upstream', '100'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.add(upstream);
    const upstreamUrl = `http://127.0.0.1:${await announcedPort(upstream)}`;
    // Gantry's stdout is its log, read from a file; a Node peer announces its port on stdout.
    const log = join(dir, 'gantry.log');
    writeFileSync(log, '');
    const { argv, headers, env } = await proxy.launch(upstreamUrl, dir);
    const child = spawn('timeout', ['-k', '5', '1800', 'valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(dir, 'callgrind.out')}`,
      process.execPath, ...argv], { stdio: ['ignore', proxy.logsToStdout ? openSync(log, 'a') : 'pipe', 'ignore'], detached: true, env: { ...process.env, ...env } });
    children.add(child);
    const port = await proxy.port(child, dir);
    process.stderr.write(`${name}: listening on ${port} under valgrind; warming up\n`);
    load(port, requests * warmupFactor, headers);
    const pid = execFileSync('pgrep', ['-f', '-n', `callgrind-out-file=${join(dir, 'callgrind.out')}`], { encoding: 'utf8' }).trim();
    execFileSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-z', pid], { stdio: 'ignore' });
    const served = load(port, requests, headers);
    execFileSync('callgrind_control', ['-i', 'off', pid], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
    let [serving, compiler] = countInstructions(dir);
    for (let i = 0; i < 100 && serving === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      [serving, compiler] = countInstructions(dir);
    }
    if (serving === 0) throw new Error(`${name}: callgrind wrote no complete dump`);
    const per = (n: number) => `${Math.round(n / served / 1000)}k`.padStart(7);
    return {
      line: `${name.padEnd(22)} ${per(serving)} ${per(compiler)} ${per(serving + compiler)}   (${served} requests, after ${requests * warmupFactor} to warm up)`,
      serving: serving / served,
    };
  } finally {
    killAll();
    if (keep) process.stderr.write(`${name}: callgrind dump kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const HELP = `npm run bench:instructions -- [--requests N] [--warmup-factor K] [--keep] [SYSTEM ...]
  (or: node dist/bench/instructions.js … after npm run build; needs valgrind)

Counts the user-space instructions per request of each SYSTEM under callgrind: K×N requests to warm up, then N counted
(default N 3000, K 6). --keep leaves each callgrind dump in its temporary folder for callgrind_annotate.
Systems: ${Object.keys(SYSTEMS).join(', ')} (default: gantry bare-undici, which judges the instructions target).
`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string' }, 'warmup-factor': { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const keep = values.keep === true;
const requests = Number(values.requests ?? 3000);
const warmupFactor = Number(values['warmup-factor'] ?? 6);
const names = positionals.length ? positionals : ['gantry', 'bare-undici'];
for (const n of names) if (!SYSTEMS[n]) throw new Error(`unknown system ${n}; there are: ${Object.keys(SYSTEMS).join(', ')}`);
process.stdout.write(`instructions per request (callgrind, user space), ${new Date().toISOString()}, node ${process.version}\n`);
process.stdout.write(`${'system'.padEnd(22)} ${'serving'.padStart(7)} ${'JIT'.padStart(7)} ${'total'.padStart(7)}\n`);
const serving = new Map<string, number>();
for (const n of names) {
  const m = await measure(n, SYSTEMS[n]!, requests, warmupFactor);
  serving.set(n, m.serving);
  process.stdout.write(`${m.line}\n`);
}
const g = serving.get('gantry');
const bare = serving.get('bare-undici');
if (g !== undefined && bare !== undefined) process.stdout.write(`${instructionsTargetLine(g, bare)}\n`);
