import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable, type Child, type ProcessGroup } from './processes.js';
import type { TlsClient } from './scenarios/scenario.js';

/** What every request of a run looks like (the same request over and over). */
export interface RequestShape {
  readonly method: 'GET' | 'POST';
  /** Headers besides the load generator's own (e.g. Host, to hit a host route). */
  readonly headers: Readonly<Record<string, string>>;
  /** The body, sent with Content-Length; '' for none. */
  readonly body: string;
}

/**
 * One run: `connections` keep-alive connections, each sending its next request as soon as the last answers (closed
 * loop), or on a schedule when `ratePerS` is set.
 */
export interface LoadRun {
  readonly url: string;
  readonly request: RequestShape;
  readonly connections: number;
  readonly durationS: number;
  /** taskset -c CPU for the load generator, if any. */
  readonly cpu?: string;
  /** Paced: this many requests per second over all connections (h2load; wrk and autocannon cannot pace evenly). */
  readonly ratePerS?: number;
  /** Over TLS (an https URL), speaking so (Scenario.tls): wrk for http1, h2load for the others. */
  readonly tls?: TlsClient;
  /** HTTP/2 streams per connection. */
  readonly streams?: number;
}

export interface LoadResult {
  /** Responses received in the run. */
  readonly requests: number;
  readonly durationS: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The slowest answer, where the generator reports each request's time (h2load). */
  readonly maxMs?: number;
  /** Responses with an error status: >= 400 for wrk, anything but 2xx for autocannon. Should be 0. */
  readonly httpErrors: number;
  /** Connect, read, write errors and timeouts. Should be 0. */
  readonly socketErrors: number;
  /** Over TLS, what h2load negotiated: "TLSv1.3, TLS_AES_128_GCM_SHA256, X25519 253 bits, h2". */
  readonly negotiated?: string;
}

export interface LoadGenerator {
  readonly name: 'wrk' | 'autocannon' | 'h2load';
  /** Name and version, for the output and RESULTS.md. */
  readonly label: string;
  /** Why this one was picked. */
  readonly reason: string;
  run(group: ProcessGroup, run: LoadRun): Promise<LoadResult>;
}

const MARK = 'GANTRY-BENCH-RESULT ';

/**
 * wrk prints its own summary with percentiles rounded for humans; this script prints the raw numbers (microseconds)
 * as one JSON line instead. It defines no request() function, so wrk's per-request fast path (no Lua) is kept.
 */
const WRK_DONE = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${MARK}{"requests":%.0f,"durationUs":%.0f,"p50Us":%.1f,"p99Us":%.1f,"status":%.0f,"socket":%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`;

async function collect(child: Child, what: string): Promise<string> {
  let out = '';
  let err = '';
  child.proc.stdout?.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.proc.stderr?.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const status = await child.exited;
  if (status.error) throw new Error(`${what} could not start: ${status.error.message}`);
  if (status.code !== 0) throw new Error(`${what} exited with ${status.code ?? status.signal}: ${err.trim() || out.trim()}`);
  const line = out.split('\n').find((l) => l.startsWith(MARK));
  if (!line) throw new Error(`${what} printed no result:\n${out}${err}`);
  return line.slice(MARK.length);
}

function wrk(path: string, workDir: string, reason: string): LoadGenerator {
  let version = 'wrk';
  try {
    execFileSync(path, ['--version'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    // wrk --version prints "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." and exits 1.
    const text = String((err as { stdout?: string }).stdout ?? '');
    version = text.split('\n')[0]?.replace(/\s*\[.*$/, '').trim() || 'wrk';
  }
  const scripts = new Map<string, string>();
  // One script per request shape, written to the run's work dir. The request is set in globals, not in a request()
  // function, so wrk formats it once and keeps its fast path.
  const scriptFor = (request: RequestShape): string => {
    const key = JSON.stringify(request);
    let file = scripts.get(key);
    if (file === undefined) {
      const lines = [`wrk.method = ${JSON.stringify(request.method)}`];
      // wrk adds its own Host unless wrk.headers["Host"] is set, spelled so: a "host" would make two Host headers.
      for (const [name, value] of Object.entries(request.headers)) {
        const canonical = name.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase());
        lines.push(`wrk.headers[${JSON.stringify(canonical)}] = ${JSON.stringify(value)}`);
      }
      if (request.body) lines.push(`wrk.body = ${JSON.stringify(request.body)}`);
      file = join(workDir, `wrk-${scripts.size}.lua`);
      writeFileSync(file, `${lines.join('\n')}\n${WRK_DONE}`);
      scripts.set(key, file);
    }
    return file;
  };
  return {
    name: 'wrk', label: `${version}, 1 thread`, reason,
    async run(group, r) {
      if (r.ratePerS !== undefined) return paced(workDir).run(group, r);
      if (r.tls !== undefined && r.tls !== 'http1') return overTls(workDir).run(group, r);
      const child = group.spawn('wrk', path, ['-t1', `-c${r.connections}`, `-d${r.durationS}s`, '--timeout', '5s', '-s', scriptFor(r.request), r.url], {
        cpu: r.cpu, stdio: ['ignore', 'pipe', 'pipe'], maxLifetimeS: r.durationS + 30,
      });
      const raw = JSON.parse(await collect(child, 'wrk')) as { requests: number; durationUs: number; p50Us: number; p99Us: number; status: number; socket: number };
      const durationS = raw.durationUs / 1e6;
      return {
        requests: raw.requests, durationS, rps: raw.requests / durationS, p50Ms: raw.p50Us / 1000, p99Ms: raw.p99Us / 1000,
        httpErrors: raw.status, socketErrors: raw.socket,
      };
    },
  };
}

function autocannon(reason: string, workDir: string): LoadGenerator {
  const require = createRequire(import.meta.url);
  const pkg = JSON.parse(readFileSync(require.resolve('autocannon/package.json'), 'utf8')) as { version: string };
  const childScript = fileURLToPath(new URL('./autocannon-child.js', import.meta.url));
  return {
    name: 'autocannon', label: `autocannon ${pkg.version}, 1 process`, reason,
    async run(group, r) {
      if (r.ratePerS !== undefined) return paced(workDir).run(group, r);
      if (r.tls === 'http1') throw new Error('HTTPS keep-alive is measured with wrk (Debian: apt-get install -y wrk)');
      if (r.tls !== undefined) return overTls(workDir).run(group, r);
      const child = group.spawn('autocannon', process.execPath, [childScript, r.url, String(r.connections), String(r.durationS), JSON.stringify(r.request)], {
        cpu: r.cpu, stdio: ['ignore', 'pipe', 'pipe'], maxLifetimeS: r.durationS + 30,
      });
      return JSON.parse(await collect(child, 'autocannon')) as LoadResult;
    },
  };
}

/**
 * The generator of paced runs: h2load, when it is on PATH (bench/run.ts installs Debian's nghttp2-client for a paced
 * scenario); null without it. Looked up at each run, so an install made after the start counts.
 */
export function pacedGenerator(workDir: string): LoadGenerator | null {
  const h2load = findExecutable('h2load');
  return h2load ? h2loadGenerator(h2load, workDir) : null;
}

/** The paced generator for a run that has checked it is there. */
function paced(workDir: string): LoadGenerator {
  const g = pacedGenerator(workDir);
  if (!g) throw new Error('a paced run needs h2load (Debian: apt-get install -y nghttp2-client)');
  return g;
}

const h2loadVersions = new Map<string, string>();

/** `h2load --version`, asked once per binary (a paced run builds its generator each round). */
function h2loadVersion(path: string): string {
  let version = h2loadVersions.get(path);
  if (version === undefined) {
    try { version = execFileSync(path, ['--version'], { encoding: 'utf8', stdio: 'pipe' }).trim(); } catch { version = 'h2load'; }
    h2loadVersions.set(path, version);
  }
  return version;
}

let h2loadRuns = 0;

/**
 * h2load (nghttp2), for paced runs: a C client with a timer per connection. Why: on this 2-core VM a paced Node
 * client put 20-27 ms into direct's own p99 (its timers and collector); h2load measured direct at p50 0.18-0.19 ms,
 * p99 0.5-0.8 ms at 2,000 req/s over 50 connections. Its connections are opened spread over one pacing interval
 * (-r per --rate-period of 1 ms): opened at once, 50 connections sent 50 requests together every 25 ms and the run
 * measured its own bursts (direct p50 2.1 ms). Every request's time comes from its --log-file.
 */
function h2loadGenerator(path: string, workDir: string): LoadGenerator {
  return {
    name: 'h2load', label: `${h2loadVersion(path)} (HTTP/1.1, paced per connection, connections opened over one interval)`, reason: `found at ${path}`,
    async run(group, r) {
      const rate = r.ratePerS as number;
      const perConnection = rate / r.connections;
      const openPerMs = Math.max(1, Math.ceil(r.connections / (1000 / perConnection)));
      const log = join(workDir, `h2load-${++h2loadRuns}.log`);
      const args = ['--h1', '-c', String(r.connections), '--rps', String(perConnection), '-r', String(openPerMs), '--rate-period', '1ms',
        '-n', String(Math.round(rate * r.durationS)), '--log-file', log];
      for (const [name, value] of Object.entries(r.request.headers)) args.push('-H', `${name}: ${value}`);
      if (r.request.body) {
        const body = join(workDir, `h2load-body-${h2loadRuns}`);
        writeFileSync(body, r.request.body);
        args.push('-d', body);   // h2load sends a POST with it
      }
      const child = group.spawn('h2load', path, [...args, r.url], { cpu: r.cpu, stdio: ['ignore', 'pipe', 'pipe'], maxLifetimeS: r.durationS * 2 + 30 });
      let out = '';
      child.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
      child.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
      const status = await child.exited;
      if (status.error) throw new Error(`h2load could not start: ${status.error.message}`);
      if (status.code !== 0) throw new Error(`h2load exited with ${status.code ?? status.signal}: ${out.trim()}`);
      return h2loadResult(out, readFileSync(log, 'utf8'));
    },
  };
}

/** The h2load generator of the TLS scenarios other than http1, for a run that has checked h2load is there. */
function overTls(workDir: string): LoadGenerator {
  const h2load = findExecutable('h2load');
  if (!h2load) throw new Error('the TLS scenarios need h2load (Debian: apt-get install -y nghttp2-client)');
  return h2loadTls(h2load, workDir);
}

/** What each system reached in its last h2load TLS run, by URL: the size of its next run comes from it. */
const lastRate = new Map<string, number>();
/** A first guess for a system's first run (its warm-up), per kind of client. */
const FIRST_RATE: Record<Exclude<TlsClient, 'http1'>, number> = { 'http2': 5000, 'new-sessions': 1000, 'resumed-sessions': 2000 };
/** tls-handshakes offers new connections this many times faster than the system's last rate: always a little more than it can take. */
export const OVERLOAD = 1.25;

/**
 * h2load over TLS. h2load runs a number of requests, not a duration (its -D stalls when the server closes connections
 * in nghttp2 1.52), so each run is sized from the system's last rate to last about `durationS`:
 * - http2: a closed loop of `streams` streams on each connection, ALPN offering h2 only (h2load fails rather than fall
 *   back to HTTP/1.1);
 * - resumed-sessions: a closed loop over HTTP/1.1, every request with `Connection: close`; h2load opens the
 *   connection again and resumes the TLS session it had (nginx's access log shows it, systems/table.ts);
 * - new-sessions: a client per connection, so each starts without a session and makes a full handshake, opened at a
 *   fixed rate (-r per 100 ms): h2load has no closed loop without resumption. The rate is OVERLOAD times the
 *   system's last, so it stays busy the whole run and what it completes is its capacity, with a short queue.
 */
function h2loadTls(path: string, workDir: string): LoadGenerator {
  return {
    name: 'h2load', label: `${h2loadVersion(path)} over TLS`, reason: `found at ${path}`,
    async run(group, r) {
      const mode = r.tls as Exclude<TlsClient, 'http1'>;
      const rate = lastRate.get(r.url) ?? FIRST_RATE[mode];
      const requests = Math.max(r.connections, Math.round(rate * r.durationS));
      const log = join(workDir, `h2load-${++h2loadRuns}.log`);
      let args: string[];
      if (mode === 'http2') {
        args = ['-c', String(r.connections), '-m', String(r.streams ?? 1), '-n', String(requests), '--npn-list', 'h2'];
      } else if (mode === 'resumed-sessions') {
        args = ['--h1', '-c', String(r.connections), '-n', String(requests), '-H', 'connection: close'];
      } else {
        const perPeriod = Math.max(1, Math.round((rate * OVERLOAD) / 10));
        const total = perPeriod * 10 * r.durationS;
        args = ['--h1', '-c', String(total), '-n', String(total), '-r', String(perPeriod), '--rate-period', '100ms'];
      }
      for (const [name, value] of Object.entries(r.request.headers)) args.push('-H', `${name}: ${value}`);
      const child = group.spawn('h2load', path, [...args, '--log-file', log, r.url], { cpu: r.cpu, stdio: ['ignore', 'pipe', 'pipe'], maxLifetimeS: r.durationS * 6 + 30 });
      let out = '';
      child.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
      child.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
      const status = await child.exited;
      if (status.error) throw new Error(`h2load could not start: ${status.error.message}`);
      if (status.code !== 0) throw new Error(`h2load exited with ${status.code ?? status.signal}: ${out.trim()}`);
      const result = h2loadResult(out, readFileSync(log, 'utf8'));
      rmSync(log);
      if (result.rps > 0) lastRate.set(r.url, result.rps);
      return { ...result, negotiated: h2loadNegotiated(out) };
    },
  };
}

/** The TLS lines of h2load's summary, in one: "TLSv1.3, TLS_AES_128_GCM_SHA256, X25519 253 bits, h2". */
export function h2loadNegotiated(summary: string): string | undefined {
  const field = (name: string) => new RegExp(`^${name}: (.+)$`, 'm').exec(summary)?.[1]?.trim();
  const parts = [field('TLS Protocol'), field('Cipher'), field('Server Temp Key'), field('Application protocol')].filter((x) => x !== undefined);
  return parts.length ? parts.join(', ') : undefined;
}

/** h2load's summary (for the duration and the failures) and its per-request log: "start µs, status, duration µs" per line. */
export function h2loadResult(summary: string, log: string): LoadResult {
  const finished = /finished in ([\d.]+)(ms|s)/.exec(summary);
  const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(summary);
  if (!finished || !counts) throw new Error(`h2load printed no summary:\n${summary}`);
  const durationS = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const times: number[] = [];
  let httpErrors = 0;
  for (const line of log.split('\n')) {
    const [, status, us] = line.split('\t');
    const code = Number(status);
    if (us === undefined || !(code > 0)) continue;   // no answer: counted as errored or timeout in the summary
    if (code >= 200 && code < 300) times.push(Number(us));
    else httpErrors++;
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => (times.length ? times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)]! / 1000 : 0);
  return {
    requests: times.length, durationS, rps: times.length / durationS, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1),
    httpErrors, socketErrors: Number(counts[6]) + Number(counts[7]),
  };
}

/** wrk when it is on $PATH (or when asked for), else autocannon from devDependencies. */
export function selectLoadGenerator(forced: string | undefined, workDir: string): LoadGenerator {
  const wrkPath = findExecutable('wrk');
  if (forced === 'wrk') {
    if (!wrkPath) throw new Error('--loadgen wrk: wrk is not on PATH (Debian: apt-get install -y wrk)');
    return wrk(wrkPath, workDir, 'asked for with --loadgen');
  }
  if (forced === 'autocannon') return autocannon('asked for with --loadgen', workDir);
  if (forced !== undefined) throw new Error(`--loadgen must be wrk or autocannon, not "${forced}"`);
  if (wrkPath) return wrk(wrkPath, workDir, `found at ${wrkPath}`);
  return autocannon('wrk not found on PATH; using the devDependency', workDir);
}

export { MARK as RESULT_MARK };
