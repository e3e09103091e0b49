/**
 * `npm run bench:idle`: Gantry's resident memory with 10 000 idle keep-alive client connections (the bound it checks:
 * RSS at most 150 MB), and with `--soak S`, whether it grows while those connections stay open and a light request
 * rate flows through some of them (target: no growth over 10 minutes). bench/README.md explains it.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { appendResults, environmentLines, runCapacityBench, type CapacityRun } from './capacity-run.js';
import { exportedMemory, get, mib, openFds, openFileLimits, pidInGroup, rssBytes } from './gantry-probes.js';
import type { Child } from './processes.js';
import { GET } from './scenarios/scenario.js';
import { expectOk, startGantry, startUpstream } from './targets.js';

const HELP = `npm run bench:idle -- [options]     (or: node dist/bench/idle-connections.js after npm run build)

Starts an upstream and Gantry, opens keep-alive client connections to Gantry (each sends one request and stays
open), and reports Gantry's RSS (from /proc) against the 150 MB target. With --soak, keeps them open for that long
with a light request rate through some of them, samples memory every 10 s and reports its growth.

Options:
  --connections N   client connections (default 10000)
  --soak S          then hold them S seconds with traffic (default 0: no soak; the target's soak is 600)
  --rate N          requests per second during the soak (default 200)
  --active N        how many of the connections carry that traffic (default 1000)
  --bare            measure a plain Node HTTP server (bench/bare-http-server.ts) instead of Gantry: the anchor
  --no-write        print only; leave bench/RESULTS.md alone
  -h, --help
`;

const TARGET_RSS_BYTES = 150 * 1000 * 1000;
const PER_CLIENT_PROCESS = 5000;
const SAMPLE_EVERY_MS = 10_000;
const BASELINE_IDLE_MS = 45_000;
const CONNECTED_IDLE_MS = 60_000;
const CLI_MARKER = 'gateway/cli.js';

function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer of at least ${min}, not "${value}"`);
  return n;
}

/**
 * Gantry and the client processes inherit this process's limit on open files. When it is too low and the hard limit
 * allows more, the runner runs itself again under `ulimit -n` (a shell builtin: Node cannot raise its own limit).
 * Returns the exit code of that run, or null to go on in this process.
 */
function raiseOpenFileLimit(needed: number): number | null {
  const limits = openFileLimits();
  if (!limits || limits.soft >= needed) return null;
  if (limits.hard < needed) {
    throw new Error(`${needed} open files needed, but the hard limit is ${limits.hard} (ulimit -Hn): raise it, or pass a smaller --connections`);
  }
  if (process.env.GANTRY_BENCH_ULIMIT) throw new Error(`ulimit -n ${needed} did not take effect`);
  process.stdout.write(`raising the open-file limit from ${limits.soft} to ${needed} (ulimit -n), and running again\n`);
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync('sh', ['-c', `ulimit -n ${needed} && exec "$0" "$@"`, process.execPath, ...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: 'inherit', env: { ...process.env, GANTRY_BENCH_ULIMIT: '1' },
  });
  return r.status ?? 1;
}

interface ClientReport { open: number; closedByPeer: number; sent: number; ok: number; failed: number; maxMs: number }

/** One idle-clients.js child: its stdout reports, read line by line, and a way to send it commands. */
class ClientProcess {
  readonly #replies: ((m: Record<string, unknown>) => void)[] = [];
  readonly opened: Promise<{ open: number; failed: number; ms: number }>;

  constructor(readonly child: Child) {
    let onOpened: (m: { open: number; failed: number; ms: number }) => void = () => {};
    this.opened = new Promise((resolve) => { onOpened = resolve; });
    createInterface({ input: child.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Record<string, unknown>;
      if (m.type === 'opened') onOpened(m as never);
      else this.#replies.shift()?.(m);
    });
  }

  command(m: Record<string, unknown>): void {
    this.child.proc.stdin!.write(`${JSON.stringify(m)}\n`);
  }

  report(): Promise<ClientReport> {
    return new Promise((resolve) => {
      this.#replies.push(resolve as never);
      this.command({ type: 'report' });
    });
  }
}

interface Sample { readonly atS: number; readonly rss: number; readonly heapUsed: number; readonly heapTotal: number; readonly fds: number; readonly clients: ClientReport }

const sumReports = (rs: readonly ClientReport[]): ClientReport => rs.reduce((a, r) => ({
  open: a.open + r.open, closedByPeer: a.closedByPeer + r.closedByPeer, sent: a.sent + r.sent, ok: a.ok + r.ok, failed: a.failed + r.failed, maxMs: Math.max(a.maxMs, r.maxMs),
}), { open: 0, closedByPeer: 0, sent: 0, ok: 0, failed: 0, maxMs: 0 });

/** Gantry in front of bench/upstream-server.js, configured so that idle connections stay open. */
async function startMeasuredGantry(run: CapacityRun, keepAliveTimeoutMs: number, lifetimeS: number): Promise<Measured> {
  const upstream = await startUpstream(run.group, 100, undefined, lifetimeS);
  const yaml = `# Written by bench/idle-connections.ts
listen: 127.0.0.1:0
admin: 127.0.0.1:0
server: { keepAliveTimeoutMs: ${keepAliveTimeoutMs}, drainGraceMs: 2000 }
log: { level: info, access: true }
services:
  upstream:
    discovery: { type: static, endpoints: ["http://127.0.0.1:${upstream.port}"] }
routes:
  - name: idle
    match: { path: /idle }
    service: upstream
`;
  const gantry = await startGantry(run.group, { dir: run.workDir, routesYaml: yaml, cpu: undefined, maxLifetimeS: lifetimeS });
  const admin = gantry.adminPort!;
  return {
    name: 'Gantry', pid: pidInGroup(gantry.child, CLI_MARKER), port: gantry.port,
    heap: async () => {
      const m = await exportedMemory(admin);
      return { used: m.heapUsedBytes, total: m.heapTotalBytes };
    },
  };
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (ys[i]! - my); den += (xs[i]! - mx) ** 2; }
  return den ? num / den : 0;
}

interface IdleFigures { readonly rss: number; readonly heapUsed: number; readonly heapTotal: number; readonly fds: number }

/** The server under test: its pid, port, and how to read its heap (Gantry's /metrics, or the bare server's). */
interface Measured {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  heap(): Promise<{ used: number; total: number }>;
}

async function figures(target: Measured): Promise<IdleFigures> {
  const heap = await target.heap();
  return { rss: rssBytes(target.pid), heapUsed: heap.used, heapTotal: heap.total, fds: openFds(target.pid) };
}

/** Figures 3 s into an idle window, at its end, and the highest RSS seen in it (sampled every 5 s). */
async function idleWindow(target: Measured, ms: number): Promise<{ first: IdleFigures; last: IdleFigures; maxRss: number }> {
  await sleep(3000);
  const first = await figures(target);
  let maxRss = first.rss;
  const end = performance.now() + ms - 3000;
  while (performance.now() < end) {
    await sleep(Math.min(5000, end - performance.now()));
    maxRss = Math.max(maxRss, rssBytes(target.pid));
  }
  return { first, last: await figures(target), maxRss };
}

/** bench/bare-http-server.js as the server under test. */
async function startBare(run: CapacityRun, keepAliveTimeoutMs: number, lifetimeS: number): Promise<Measured> {
  const script = fileURLToPath(new URL('./bare-http-server.js', import.meta.url));
  const child = run.group.spawn('bare', process.execPath, [script, String(keepAliveTimeoutMs)], { stdio: ['ignore', 'pipe', 'inherit'], maxLifetimeS: lifetimeS });
  const [line] = await Promise.race([
    once(createInterface({ input: child.proc.stdout! }), 'line') as Promise<[string]>,
    child.exited.then(() => { throw new Error('the bare server exited before it listened'); }),
  ]);
  const port = (JSON.parse(line) as { port: number }).port;
  return {
    name: 'a bare Node HTTP server', pid: pidInGroup(child, 'bare-http-server.js'), port,
    heap: async () => {
      const m = JSON.parse(await get(`http://127.0.0.1:${port}/__memory`)) as NodeJS.MemoryUsage;
      return { used: m.heapUsed, total: m.heapTotal };
    },
  };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function main(run: CapacityRun): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true,
    options: {
      connections: { type: 'string' }, soak: { type: 'string' }, rate: { type: 'string' }, active: { type: 'string' }, bare: { type: 'boolean' },
      'no-write': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(HELP); return 0; }
  const connections = positiveInt('connections', values.connections, 10_000);
  const soakS = positiveInt('soak', values.soak, 0, 0);
  const rate = positiveInt('rate', values.rate, 200);
  const active = Math.min(connections, positiveInt('active', values.active, 1000));
  const again = raiseOpenFileLimit(connections + 1024);
  if (again !== null) return again;

  const env = await environmentLines();
  process.stdout.write(`${env.lines.join('\n')}\n`);
  const lifetimeS = soakS + 900;
  // Keep-alive idle time well past the run: the default 5 s would close every idle connection long before it ends.
  const keepAliveTimeoutMs = (lifetimeS + 600) * 1000;
  const target = values.bare ? await startBare(run, keepAliveTimeoutMs, lifetimeS) : await startMeasuredGantry(run, keepAliveTimeoutMs, lifetimeS);
  for (let i = 0; i < 20; i++) await expectOk(`http://127.0.0.1:${target.port}/idle`, GET, 100);
  // V8 shrinks its heap only after a while without allocation (its memory reducer): each idle figure is read over a
  // window, and the value at the end of it is the settled one.
  const before = await idleWindow(target, BASELINE_IDLE_MS);
  process.stdout.write(`${target.name}, pid ${target.pid}, no client connection: RSS ${mib(before.first.rss)} at first, ${mib(before.last.rss)} after ${BASELINE_IDLE_MS / 1000} s\n`);

  const script = fileURLToPath(new URL('./idle-clients.js', import.meta.url));
  const processes = Math.ceil(connections / PER_CLIENT_PROCESS);
  const clients: ClientProcess[] = [];
  for (let k = 0; k < processes; k++) {
    const share = Math.floor(connections / processes) + (k < connections % processes ? 1 : 0);
    clients.push(new ClientProcess(run.group.spawn(`clients-${k}`, process.execPath, [script, String(target.port), String(share), '/idle'], { stdio: ['pipe', 'pipe', 'inherit'], maxLifetimeS: lifetimeS })));
  }
  const opened = await Promise.all(clients.map((c) => c.opened));
  const openCount = opened.reduce((n, o) => n + o.open, 0);
  const failedOpen = opened.reduce((n, o) => n + o.failed, 0);
  process.stdout.write(`${openCount} connections open (${failedOpen} failed) in ${Math.max(...opened.map((o) => o.ms))} ms; idle for ${CONNECTED_IDLE_MS / 1000} s\n`);
  const idle = await idleWindow(target, CONNECTED_IDLE_MS);
  const idleClients = sumReports(await Promise.all(clients.map((c) => c.report())));
  const settled = idle.last;
  const perConnection = (settled.rss - before.last.rss) / Math.max(1, idleClients.open);
  const verdict = settled.rss <= TARGET_RSS_BYTES ? 'meets' : 'misses';
  const describe = (f: IdleFigures) => `RSS ${mib(f.rss)} (${(f.rss / 1e6).toFixed(0)} MB), heap used ${mib(f.heapUsed)} of ${mib(f.heapTotal)}`;
  const idleLines = [
    `- No client connection: ${describe(before.first)} 3 s after start; ${describe(before.last)} ${BASELINE_IDLE_MS / 1000} s later`,
    `- ${idleClients.open} idle keep-alive connections (each after one request), after ${CONNECTED_IDLE_MS / 1000} s idle: **${describe(settled)}**, ${settled.fds} open files; target RSS ≤ 150 MB: ${verdict}. Right after they opened: ${describe(idle.first)}; highest in the minute: RSS ${mib(idle.maxRss)}`,
    `- Each connection costs ${(perConnection / 1024).toFixed(1)} KiB of settled RSS; ${openCount} opened in ${Math.max(...opened.map((o) => o.ms))} ms by ${processes} client process${processes === 1 ? '' : 'es'}, ${failedOpen} failed, ${idleClients.closedByPeer} closed by the server while idle`,
  ];
  process.stdout.write(`\n${idleLines.join('\n')}\n`);

  let soakLines: string[] = [];
  const samples: Sample[] = [];
  if (soakS > 0 && !run.interrupted()) {
    process.stdout.write(`\nsoak: ${soakS} s, ${rate} requests/s over ${active} of the connections; a sample every ${SAMPLE_EVERY_MS / 1000} s\n`);
    clients.forEach((c) => c.command({ type: 'traffic', rate: rate / processes, sockets: Math.ceil(active / processes) }));
    const started = performance.now();
    for (let next = SAMPLE_EVERY_MS; next <= soakS * 1000 && !run.interrupted(); next += SAMPLE_EVERY_MS) {
      await sleep(Math.max(0, started + next - performance.now()));
      const f = await figures(target);
      const s: Sample = { atS: (performance.now() - started) / 1000, ...f, clients: sumReports(await Promise.all(clients.map((c) => c.report()))) };
      samples.push(s);
      process.stdout.write(`${s.atS.toFixed(0).padStart(4)} s  RSS ${mib(s.rss)}  heap ${mib(s.heapUsed)} / ${mib(s.heapTotal)}  fds ${s.fds}  open ${s.clients.open}  ${s.clients.ok}/${s.clients.sent} ok, ${s.clients.failed} failed, slowest ${s.clients.maxMs} ms\n`);
    }
    clients.forEach((c) => c.command({ type: 'traffic', rate: 0 }));
    soakLines = soakSummary(samples, soakS, rate, active);
    process.stdout.write(`\n${soakLines.join('\n')}\n`);
  }
  for (const c of clients) c.child.proc.stdin!.end();
  await Promise.all(clients.map((c) => c.child.exited));

  if (!values['no-write']) {
    const command = ['npm run bench:idle', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
    const rows = samples.map((s) => `| ${s.atS.toFixed(0)} | ${(s.rss / 2 ** 20).toFixed(1)} | ${(s.heapUsed / 2 ** 20).toFixed(1)} | ${(s.heapTotal / 2 ** 20).toFixed(1)} | ${s.fds} | ${s.clients.open} | ${s.clients.ok} | ${s.clients.failed} | ${s.clients.maxMs} |`);
    const table = rows.length ? `\n<details><summary>Samples</summary>\n\n| s | RSS MiB | heap used MiB | heap total MiB | fds | open | ok | failed | slowest ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}\n\n</details>\n` : '';
    const section = `
## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · idle-connections${values.bare ? ' · bare Node anchor' : ''} · ${connections} connections${soakS ? ` · ${soakS} s soak` : ''}

- Command: \`${command}\`
${env.lines.join('\n')}
- Server: ${values.bare ? 'a bare Node HTTP server (bench/bare-http-server.ts, keepAliveTimeout ' + keepAliveTimeoutMs + ' ms), the anchor' : `Gantry, 1 route, 1 static endpoint, access log on, \`server.keepAliveTimeoutMs: ${keepAliveTimeoutMs}\``}; not pinned; RSS from /proc/PID/status (VmRSS), heap from ${values.bare ? 'process.memoryUsage()' : 'its /metrics'}
${idleLines.join('\n')}
${soakLines.join('\n')}
${table}`;
    process.stdout.write(`appended to ${appendResults(section)}\n`);
  }
  const lost = idleClients.closedByPeer + (samples.at(-1)?.clients.closedByPeer ?? 0);
  return openCount === connections && lost === 0 && samples.every((s) => s.clients.failed === 0) ? 0 : 1;
}

/** Growth between the first and the last minute of the soak, and the trend over all of it. */
function soakSummary(samples: readonly Sample[], soakS: number, rate: number, active: number): string[] {
  if (samples.length < 2) return ['- Soak: too short for a trend'];
  const sent = samples.reduce((n, s) => n + s.clients.sent, 0);
  const failed = samples.reduce((n, s) => n + s.clients.failed, 0);
  const lines = [
    `- Soak: ${soakS} s, ${rate} requests/s asked (${(sent / soakS).toFixed(0)}/s sent) over ${active} of the connections, ${samples.length} samples; ${sent} requests, ${failed} failed, slowest ${Math.max(...samples.map((s) => s.clients.maxMs))} ms; connections still open at the end: ${samples.at(-1)!.clients.open}`,
    growth('All of it', samples),
  ];
  // The soak starts from the idle minute's collected heap, which traffic grows back to its working size in its first
  // minute: that step is not growth over time, so the trend is also given without it.
  const steady = samples.filter((s) => s.atS > 60);
  if (steady.length >= 12) lines.push(growth('After the first minute', steady));
  return lines;
}

/** First against last minute of `samples` (RSS means; the heap's lowest point, what survived collection) and trends. */
function growth(label: string, samples: readonly Sample[]): string {
  const start = samples[0]!.atS;
  const end = samples.at(-1)!.atS;
  const first = samples.filter((s) => s.atS < start + 60);
  const last = samples.filter((s) => s.atS > end - 60);
  const mins = samples.map((s) => s.atS / 60);
  const trend = (values: number[]) => { const k = slope(mins, values); return `${k >= 0 ? '+' : ''}${k.toFixed(2)} MiB/min`; };
  const floor = (ss: readonly Sample[]) => Math.min(...ss.map((s) => s.heapUsed));
  return `- ${label} (${start.toFixed(0)}-${end.toFixed(0)} s): RSS ${mib(mean(first.map((s) => s.rss)))} in the first minute, ${mib(mean(last.map((s) => s.rss)))} in the last (means), trend ${trend(samples.map((s) => s.rss / 2 ** 20))}, max ${mib(Math.max(...samples.map((s) => s.rss)))}; heap used at its lowest ${mib(floor(first))} in the first minute, ${mib(floor(last))} in the last, trend ${trend(samples.map((s) => s.heapUsed / 2 ** 20))}; heap committed ${mib(first[0]!.heapTotal)} → ${mib(samples.at(-1)!.heapTotal)}`;
}

runCapacityBench('idle-connections', main);
