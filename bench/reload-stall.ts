/**
 * `npm run bench:reload`: how long a SIGHUP reload of a 10 000-route file blocks Gantry's event loop (the bound
 * checked: at most 50 ms), measured inside the gateway (its `reload-timing` log line: the longest gap of a 10 ms
 * monitorEventLoopDelay timer while the reload ran, and the time of each phase) and outside it (the slowest response
 * to a steady request rate that keeps flowing during each reload). Also: how long Gantry takes to start on the file,
 * and how much resident memory the 10 000-route config costs over a 1-route one. bench/README.md explains it.
 */
import { renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GatewayMetrics } from '../gateway/admin/metrics.js';
import { parseRoutes } from '../gateway/config/load-routes-file.js';
import type { RuntimeSnapshot } from '../gateway/runtime/runtime-snapshot.js';
import { Router } from '../gateway/routing/router.js';
import { createBuiltinRegistry } from '../plugins/index.js';
import { appendResults, environmentLines, LogFollower, runCapacityBench, startGantryWithin, type CapacityRun, type StartedGantry } from './capacity-run.js';
import { changesWithVariant, DEFAULT_HOSTS, isExactRoute, largeRoutePath, largeRouteHost, largeRoutesYaml } from './large-routes-file.js';
import { exportedMemory, loopLagMaxMs, mib, pidInGroup, rssBytes } from './gantry-probes.js';
import { detectPinning } from './processes.js';
import { median } from './stats.js';
import { probe, startUpstream } from './targets.js';

const HELP = `npm run bench:reload -- [options]     (or: node dist/bench/reload-stall.js after npm run build)

Starts an upstream and Gantry on a generated routes file, sends a steady request rate through it, reloads the file
(changed each time) with SIGHUP, and reports per reload the event-loop stall measured inside Gantry, the phase times,
and the slowest response seen by the client; plus start-up time and resident memory against a 1-route config.

Options:
  --routes N      routes in the file (default 10000)
  --services N    services the routes spread over (default 20)
  --hosts N       tenant hosts the host routes (half of them) spread over (default 1000)
  --reloads N     reloads to measure (default 5)
  --rate N        requests per second during the run (default 200)
  --pin           taskset: Gantry on CPU 0, upstream and this client on CPU 1 (default: not pinned)
  --no-write      print only; leave bench/RESULTS.md alone
  -h, --help
`;

/** The longest a reload of the file may block the event loop: a request arriving then waits that long. */
const MAX_STALL_MS = 50;
const QUIET_WINDOW_MS = 10_000;
const CLI_MARKER = 'gateway/cli.js';

/** One request: when it was sent and answered, and why it failed (an HTTP status or an error code), if it did. */
interface Sample { readonly start: number; readonly end: number; readonly failure?: string }

/** A steady open-loop request rate over keep-alive connections, to routes every variant of the file keeps. */
class SteadyTraffic {
  readonly samples: Sample[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  #timer: NodeJS.Timeout | undefined;
  #n = 0;

  constructor(private readonly port: number, private readonly routes: number, private readonly hosts: number) {}

  start(ratePerS: number): void {
    // One request per tick; timers fire at 1 ms granularity at best, so high rates send several per tick.
    const everyMs = Math.max(1, 1000 / ratePerS);
    const perTick = Math.max(1, Math.round(ratePerS / 1000 * everyMs));
    this.#timer = setInterval(() => { for (let k = 0; k < perTick; k++) this.#send(); }, everyMs);
  }

  #send(): void {
    // Only routes every variant keeps, so every request must get 200.
    let i = (this.#n++ * 7919) % this.routes;
    if (changesWithVariant(i)) i = (i + 1) % this.routes;
    const headers: Record<string, string> = { host: largeRouteHost(i, this.hosts) ?? 'bench.local' };
    if (i % 10 === 7) headers['x-tenant'] = `tenant-${i % 97}`;
    const start = performance.now();
    const req = http.get({ host: '127.0.0.1', port: this.port, path: isExactRoute(i) ? largeRoutePath(i) : `${largeRoutePath(i)}/item`, headers, agent: this.#agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => this.samples.push({ start, end: performance.now(), failure: res.statusCode === 200 ? undefined : String(res.statusCode) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => this.samples.push({ start, end: performance.now(), failure: err.code ?? err.message }));
  }

  /** Stops sending, then waits (up to 10 s) for the answers still due: destroying the agent first resets them. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const sent = this.#n;
    for (let waited = 0; this.samples.length < sent && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    this.#agent.destroy();
  }

  /** Requests that were in flight at some point in [from, to]. */
  during(from: number, to: number): Sample[] {
    return this.samples.filter((s) => s.start <= to && s.end >= from);
  }
}

interface ReloadResult {
  readonly n: number;
  readonly result: string;
  readonly loopDelayMaxMs: number;
  readonly totalMs: number;
  readonly phasesMs: Record<string, number>;
  readonly clientMaxMs: number;
  readonly requests: number;
  readonly failed: number;
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not "${value}"`);
  return n;
}

const header = `listen: 127.0.0.1:0
admin: 127.0.0.1:0
server: { drainGraceMs: 2000, keepAliveTimeoutMs: 60000 }
log: { level: info, access: false }
`;

/** Heap a routes file keeps alive once loaded, by part, in bytes (after full garbage collections). */
interface RetainedMemory {
  /** The frozen GatewayConfig. */
  readonly configBytes: number;
  /** The compiled routing table. */
  readonly routerBytes: number;
  /** The per-route request series GatewayMetrics keeps once every route has had a request (they start with it). */
  readonly metricsBytes: number;
}

/**
 * Measured in this process, where garbage can be collected on demand (node --expose-gc; null without it). The RSS of
 * a running Gantry also holds garbage not yet collected and memory the allocator keeps, so it reads higher.
 */
async function retainedMemory(yaml: string): Promise<RetainedMemory | null> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  // Sweeping after a collection finishes on helper threads: heapUsed read at once can still count garbage (seen:
  // a negative figure for the next part). A few collections with pauses between settle it.
  const heap = async () => {
    for (let i = 0; i < 4; i++) { gc(); await new Promise((resolve) => setTimeout(resolve, 50)); }
    return process.memoryUsage().heapUsed;
  };
  const metrics = new GatewayMetrics({ current: () => undefined, version: 'bench' });
  const h0 = await heap();
  const config = parseRoutes(yaml, 'routes.yaml', createBuiltinRegistry());
  const h1 = await heap();
  const router = new Router(config.routes);
  const h2 = await heap();
  metrics.configLoaded({ config, generation: 1, loadedAt: Date.now(), router } as unknown as RuntimeSnapshot);
  for (const r of config.routes) metrics.requests.requestFinished({ route: r, status: 200, bytes: 100, errorCode: undefined, durationMs: () => 1 } as never);
  const h3 = await heap();
  return { configBytes: h1 - h0, routerBytes: h2 - h1, metricsBytes: h3 - h2 };
}

/** Starts Gantry on `yaml`: the time to its "started" line, its RSS and heap a moment later. */
async function startMeasured(run: CapacityRun, dir: string, yaml: string, cpu: string | undefined, lifetimeS: number) {
  const gantry = await startGantryWithin(run, dir, yaml, 120_000, lifetimeS, cpu);
  const pid = pidInGroup(gantry.child, CLI_MARKER);
  // Let start-up garbage settle a little (no GC can be forced from outside); the same wait for both configs.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const rss = rssBytes(pid);
  // A scrape formats a series per route: with 10 000 routes it blocks Gantry for seconds, so it is timed, and made
  // only here, before any traffic (and at the edges of the quiet window, outside what is measured).
  const t1 = performance.now();
  const memory = await exportedMemory(gantry.adminPort);
  return { gantry, pid, startMs: gantry.startMs, rss, heapUsed: memory.heapUsedBytes, scrapeMs: performance.now() - t1 };
}

async function reloadOnce(gantry: StartedGantry, pid: number, file: string, yaml: string, log: LogFollower, traffic: SteadyTraffic, n: number): Promise<ReloadResult> {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, yaml);
  renameSync(tmp, file);   // the reload never reads half a file
  log.skip();
  const from = performance.now();
  process.kill(pid, 'SIGHUP');
  const timing = await log.next((l) => l.event === 'reload-timing', 120_000);
  const to = performance.now();
  // Let requests that started during the reload finish before reading their latency.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const seen = traffic.during(from, to);
  const changed = await probe(`http://127.0.0.1:${gantry.port}${largeRoutePath(1, n)}/x`);
  const result = String(timing.result);
  if (result === 'applied' && changed.status === 404) throw new Error(`reload ${n}: applied, but the changed route answers 404`);
  return {
    n, result, loopDelayMaxMs: Number(timing.loopDelayMaxMs), totalMs: Number(timing.totalMs), phasesMs: timing.phasesMs as Record<string, number>,
    clientMaxMs: Math.max(0, ...seen.map((s) => s.end - s.start)), requests: seen.length, failed: seen.filter((s) => s.failure).length,
  };
}

const fmtPhases = (p: Record<string, number>) => Object.entries(p).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ');

async function main(run: CapacityRun): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2), strict: true,
    options: {
      routes: { type: 'string' }, services: { type: 'string' }, hosts: { type: 'string' }, reloads: { type: 'string' }, rate: { type: 'string' },
      pin: { type: 'boolean' }, 'no-write': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(HELP); return 0; }
  const routes = positiveInt('routes', values.routes, 10_000);
  const services = positiveInt('services', values.services, 20);
  const hosts = positiveInt('hosts', values.hosts, DEFAULT_HOSTS);
  const reloads = positiveInt('reloads', values.reloads, 5);
  const rate = positiveInt('rate', values.rate, 200);
  const pinning = values.pin ? detectPinning(false) : { enabled: false, proxyCpu: '', clientCpu: '', description: 'none (pass --pin to pin); every process shares all CPUs' };
  const env = await environmentLines();
  process.stdout.write(`${env.lines.join('\n')}\npinning: ${pinning.description}\n`);

  const lifetimeS = 600 + reloads * 120;
  const clientCpu = pinning.enabled ? pinning.clientCpu : undefined;
  const gatewayCpu = pinning.enabled ? pinning.proxyCpu : undefined;
  const upstream = await startUpstream(run.group, 100, clientCpu, lifetimeS);
  const target = `http://127.0.0.1:${upstream.port}`;

  const small = await startMeasured(run, join(run.workDir, 'small'), largeRoutesYaml({ routes: 1, services: 1, upstream: target, header }), gatewayCpu, lifetimeS);
  await run.group.stop(small.gantry.child);
  process.stdout.write(`1 route: started in ${Math.round(small.startMs)} ms; RSS ${mib(small.rss)}, heap used ${mib(small.heapUsed)}\n`);

  const yaml = (variant: number) => largeRoutesYaml({ routes, services, hosts, upstream: target, header, variant });
  const bytes = Buffer.byteLength(yaml(0));
  const retained = await retainedMemory(yaml(0));
  const retainedText = retained
    ? `config ${mib(retained.configBytes)}, routing table ${mib(retained.routerBytes)}, metrics series once every route had a request ${mib(retained.metricsBytes)} (heap kept after a full GC, measured in this process)`
    : 'not measured (run with node --expose-gc, as npm run bench:reload does)';
  process.stdout.write(`${routes} routes retain: ${retainedText}\n`);
  const large = await startMeasured(run, join(run.workDir, 'large'), yaml(0), gatewayCpu, lifetimeS);
  process.stdout.write(`${routes} routes (${(bytes / 2 ** 20).toFixed(2)} MiB of YAML): started in ${Math.round(large.startMs)} ms; RSS ${mib(large.rss)}, heap used ${mib(large.heapUsed)}; GET /metrics took ${Math.round(large.scrapeMs)} ms (1 route: ${Math.round(small.scrapeMs)} ms)\n`);
  const check = await probe(`http://127.0.0.1:${large.gantry.port}${largeRoutePath(1)}`);
  if (check.status !== 200) throw new Error(`a request to route 1 answered ${check.status}`);

  const traffic = new SteadyTraffic(large.gantry.port, routes, hosts);
  traffic.start(rate);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  // The same traffic without a reload: what this machine's neighbours and Gantry's own work do to the event loop.
  await loopLagMaxMs(large.gantry.adminPort);
  const quietFrom = performance.now();
  await new Promise((resolve) => setTimeout(resolve, QUIET_WINDOW_MS));
  // Requests sent from 3 s into the window (the opening scrape's backlog has cleared by then), counted before the
  // closing scrape, which blocks Gantry after it has read the loop histogram.
  const clientMs = Math.max(0, ...traffic.samples.filter((s) => s.start >= quietFrom + 3000).map((s) => s.end - s.start));
  const quiet = { clientMs, loopMs: await loopLagMaxMs(large.gantry.adminPort) };
  await new Promise((resolve) => setTimeout(resolve, 2000));
  process.stdout.write(`no reload, ${QUIET_WINDOW_MS / 1000} s: event loop blocked ${quiet.loopMs.toFixed(1)} ms at most; client: slowest ${quiet.clientMs.toFixed(1)} ms\n`);
  const file = join(run.workDir, 'large', 'routes.yaml');
  const log = new LogFollower(large.gantry.logFile);
  const results: ReloadResult[] = [];
  for (let n = 1; n <= reloads && !run.interrupted(); n++) {
    const r = await reloadOnce(large.gantry, large.pid, file, yaml(n), log, traffic, n);
    results.push(r);
    process.stdout.write(`reload ${n}: ${r.result}; event loop blocked ${r.loopDelayMaxMs} ms at most; ${Math.round(r.totalMs)} ms in all (${fmtPhases(r.phasesMs)}); client: slowest ${r.clientMaxMs.toFixed(1)} ms of ${r.requests} requests, ${r.failed} failed\n`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  await traffic.stop();
  const rssAfter = rssBytes(large.pid);
  await run.group.stop(large.gantry.child);

  const stalls = results.map((r) => r.loopDelayMaxMs);
  const worst = Math.max(...stalls);
  const failures = new Map<string, number>();
  for (const s of traffic.samples) if (s.failure) failures.set(s.failure, (failures.get(s.failure) ?? 0) + 1);
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  const verdict = worst <= MAX_STALL_MS ? 'within' : 'OVER';
  const summary = [
    `- Stall inside Gantry (max over ${results.length} reloads): **${worst} ms** (median ${median(stalls)} ms); bound ≤ ${MAX_STALL_MS} ms: ${verdict}`,
    `- Client (${rate} req/s, keep-alive): slowest response during a reload ${Math.max(...results.map((r) => r.clientMaxMs)).toFixed(1)} ms; ${traffic.samples.length} requests, ${failed} failed`,
    `- Without a reload (${QUIET_WINDOW_MS / 1000} s of the same traffic, just before): event loop blocked ${quiet.loopMs.toFixed(1)} ms at most (prom-client's nodejs_eventloop_lag_max_seconds − 10 ms); client slowest ${quiet.clientMs.toFixed(1)} ms`,
    `- Start-up (spawn to "started" log line, polled every 20 ms): 1 route ${Math.round(small.startMs)} ms; ${routes} routes ${Math.round(large.startMs)} ms`,
    `- Memory the ${routes}-route config keeps: ${retainedText}`,
    `- GET /metrics on the admin listener (it blocks the event loop while it formats): 1 route ${Math.round(small.scrapeMs)} ms; ${routes} routes ${Math.round(large.scrapeMs)} ms`,
    `- Resident memory 3 s after start: 1 route ${mib(small.rss)} (heap used ${mib(small.heapUsed)}); ${routes} routes ${mib(large.rss)} (heap used ${mib(large.heapUsed)}); after the reloads ${mib(rssAfter)}`,
  ];
  process.stdout.write(`\n${summary.join('\n')}\n`);
  if (failed) process.stdout.write(`warning: ${failed} requests failed: ${[...failures].map(([why, n]) => `${n} × ${why}`).join(', ')}\n`);

  if (!values['no-write']) {
    const rows = results.map((r) => `| ${r.n} | ${r.result} | ${r.loopDelayMaxMs} | ${Math.round(r.totalMs)} | ${fmtPhases(r.phasesMs)} | ${r.clientMaxMs.toFixed(1)} | ${r.requests} | ${r.failed} |`);
    const section = `
## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · reload-stall · ${routes} routes

- Command: \`${['npm run bench:reload', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ')}\`
${env.lines.join('\n')}
- File: ${routes} routes over ${services} services and ${hosts} hosts, ${(bytes / 2 ** 20).toFixed(2)} MiB of YAML (bench/large-routes-file.ts); each reload changes one route in 50
- Pinning: ${pinning.description}
${summary.join('\n')}

| reload | result | loop blocked (ms) | total (ms) | phases (ms) | client slowest (ms) | requests | failed |
|---:|---|---:|---:|---|---:|---:|---:|
${rows.join('\n')}
`;
    process.stdout.write(`appended to ${appendResults(section)}\n`);
  }
  return failed || results.some((r) => r.result !== 'applied') ? 1 : 0;
}

runCapacityBench('reload-stall', main);
