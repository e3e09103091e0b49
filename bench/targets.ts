import { closeSync, createReadStream, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { RequestShape } from './load-generator.js';
import type { Child, ProcessGroup } from './processes.js';

export interface Upstream {
  readonly child: Child;
  readonly port: number;
}

export interface GantryProcess {
  readonly child: Child;
  readonly port: number;
  /** The TLS listener's port, when the routes file has one. */
  readonly tlsPort: number | null;
  readonly adminPort: number | null;
  /** Where its stdout (the JSON log, access lines included) goes. */
  readonly logFile: string;
  readonly stderrFile: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function exitedEarly(child: Child): Promise<never> {
  const s = await child.exited;
  throw new Error(`${child.name} exited before it was ready (${s.error?.message ?? s.code ?? s.signal})`);
}

/** Starts one of bench/node-servers.js's servers (the upstream, a Node peer) and waits for the {"port":N} line it prints. */
export async function startAnnouncedServer(group: ProcessGroup, name: string, script: string, args: readonly string[], cpu: string | undefined, maxLifetimeS: number): Promise<Upstream> {
  const child = group.spawn(name, process.execPath, [script, ...args], { cpu, stdio: ['ignore', 'pipe', 'inherit'], maxLifetimeS });
  const port = new Promise<number>((resolve, reject) => {
    let out = '';
    child.proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      try { resolve((JSON.parse(out.slice(0, nl)) as { port: number }).port); } catch (err) { reject(err as Error); }
      child.proc.stdout!.removeAllListeners('data').resume();
    });
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    return {
      child,
      port: await Promise.race([
        port,
        exitedEarly(child),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s`)), 10_000); }),
      ]),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The script of the upstream and the Node peers. */
export const NODE_SERVERS = fileURLToPath(new URL('./node-servers.js', import.meta.url));

/** Starts the upstream (bench/node-servers.ts): 200 with a `bodyBytes`-byte body to every request. */
export function startUpstream(group: ProcessGroup, bodyBytes: number, cpu: string | undefined, maxLifetimeS: number): Promise<Upstream> {
  return startAnnouncedServer(group, 'upstream', NODE_SERVERS, ['upstream', String(bodyBytes)], cpu, maxLifetimeS);
}

export interface GantryOptions {
  /** A directory of its own: routes.yaml, the log and stderr go there. */
  readonly dir: string;
  readonly routesYaml: string;
  readonly cpu: string | undefined;
  readonly maxLifetimeS: number;
  /** `--workers N` when set: a primary and N workers on one port (each logs its own "started" line). */
  readonly workers?: number;
}

/**
 * Starts Gantry the way a user would: `node dist/gateway/cli.js start -c routes.yaml [--workers N]`, stdout and stderr
 * redirected to files. The port comes from the "started" log line (the config listens on port 0); with workers, once
 * every worker has logged one (they share the port).
 */
export async function startGantry(group: ProcessGroup, o: GantryOptions): Promise<GantryProcess> {
  const configFile = join(o.dir, 'routes.yaml');
  const logFile = join(o.dir, 'gantry.log');
  const stderrFile = join(o.dir, 'gantry.stderr.log');
  writeFileSync(configFile, o.routesYaml);
  const cli = fileURLToPath(new URL('../gateway/cli.js', import.meta.url));
  const out = openSync(logFile, 'w');
  const err = openSync(stderrFile, 'w');
  let child: Child;
  try {
    const args = [cli, 'start', '-c', configFile, ...(o.workers === undefined ? [] : ['--workers', String(o.workers)])];
    child = group.spawn('gantry', process.execPath, args, { cpu: o.cpu, stdio: ['ignore', out, err], maxLifetimeS: o.maxLifetimeS });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  // A 10 000-route file takes seconds to load on a busy 2-core machine; give it a minute.
  const deadline = Date.now() + 60_000;
  const needed = o.workers ?? 1;
  let startedLines = 0;
  let checked = 0;
  for (;;) {
    if (!child.running()) {
      const s = await child.exited;
      throw new Error(`gantry exited before it was ready (${s.error?.message ?? s.code ?? s.signal}):\n${tail(stderrFile)}${tail(logFile)}`);
    }
    const text = readFileSync(logFile, 'utf8');
    const complete = text.lastIndexOf('\n') + 1;
    // Only complete lines; the first few hold the "started" line(s).
    for (const line of text.slice(checked, complete).split('\n')) {
      if (!line.includes('"started"')) continue;
      const entry = JSON.parse(line) as { event?: string; listen?: { port: number }; tls?: { port: number }; admin?: { port: number } | null };
      if (entry.event === 'started' && entry.listen && ++startedLines === needed) {
        return { child, port: entry.listen.port, tlsPort: entry.tls?.port ?? null, adminPort: entry.admin?.port ?? null, logFile, stderrFile };
      }
    }
    checked = complete;
    if (Date.now() > deadline) throw new Error(`gantry did not log "started" ${needed} time(s) within 60 s:\n${tail(stderrFile)}${tail(logFile)}`);
    await sleep(50);
  }
}

/** The last lines of a log file, headed by its name, for an error message; empty when there is nothing to show. */
export function tail(file: string, lines = 20): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text ? `--- ${file} ---\n${text.split('\n').slice(-lines).join('\n')}\n` : '';
  } catch {
    return '';
  }
}

export interface ProbeResult {
  readonly status: number;
  readonly bodyBytes: number;
  /** The upstream's x-received-bytes answer to a request with a body, passed back by the proxy; null without one. */
  readonly receivedBytes: number | null;
}

/**
 * One request shaped like the scenario's, on a fresh connection: HTTP/1.1, over TLS for an https URL (the run's own
 * self-signed certificate, not verified: only 127.0.0.1 is reached).
 */
export function probe(url: string, request: RequestShape = { method: 'GET', headers: {}, body: '' }): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...request.headers, connection: 'close' };
    if (request.body) headers['content-length'] = String(Buffer.byteLength(request.body));
    const options = { method: request.method, agent: false, headers, timeout: 5000, rejectUnauthorized: false } as const;
    const req = (url.startsWith('https:') ? https : http).request(url, options, (res) => {
      let bodyBytes = 0;
      res.on('data', (c: Buffer) => { bodyBytes += c.length; });
      res.on('end', () => {
        const received = res.headers['x-received-bytes'];
        resolve({ status: res.statusCode ?? 0, bodyBytes, receivedBytes: typeof received === 'string' ? Number(received) : null });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${request.method} ${url} timed out`)));
    req.on('error', reject);
    req.end(request.body || undefined);
  });
}

/** The same over HTTP/2 (ALPN h2 only): fails when the server does not speak it. */
export function probeHttp2(url: string, request: RequestShape): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const fail = (err: Error) => { session.destroy(); reject(err); };
    session.on('error', fail);
    session.setTimeout(5000, () => fail(new Error(`${request.method} ${url} over HTTP/2 timed out`)));
    const headers: Record<string, string> = { ...request.headers, ':method': request.method, ':path': new URL(url).pathname };
    if (request.body) headers['content-length'] = String(Buffer.byteLength(request.body));
    const stream = session.request(headers);
    let status = 0;
    let received: string | undefined;
    let bodyBytes = 0;
    stream.on('response', (h) => { status = Number(h[':status']); received = h['x-received-bytes'] as string | undefined; });
    stream.on('data', (c: Buffer) => { bodyBytes += c.length; });
    stream.on('end', () => { session.close(); resolve({ status, bodyBytes, receivedBytes: received === undefined ? null : Number(received) }); });
    stream.on('error', fail);
    stream.end(request.body || undefined);
  });
}

/**
 * Fails unless `url` answers the scenario's request with 200 and exactly `bodyBytes` bytes, and a request body
 * arrived at the upstream whole: a benchmark of error pages (or of dropped bodies) would measure nothing. `http2`:
 * asked over HTTP/2, which the system must then negotiate.
 */
export async function expectOk(url: string, request: RequestShape, bodyBytes: number, http2 = false): Promise<void> {
  const r = await (http2 ? probeHttp2(url, request) : probe(url, request));
  const what = `${request.method} ${url}${request.headers.host ? ` (Host ${request.headers.host})` : ''}`;
  if (r.status !== 200 || r.bodyBytes !== bodyBytes) {
    throw new Error(`${what}: expected 200 with a ${bodyBytes}-byte body, got ${r.status} with ${r.bodyBytes} bytes`);
  }
  const sent = Buffer.byteLength(request.body);
  if (sent > 0 && r.receivedBytes !== sent) throw new Error(`${what}: the upstream received ${r.receivedBytes ?? 'no'} body bytes of ${sent}`);
}

/** Access-log lines in Gantry's log file, and how many of them have status 200. */
export async function countAccessLines(logFile: string): Promise<{ lines: number; ok: number }> {
  let lines = 0;
  let ok = 0;
  const rl = createInterface({ input: createReadStream(logFile, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.includes('"log":"access"')) continue;
    lines++;
    if (line.includes('"status":200,')) ok++;
  }
  return { lines, ok };
}

/**
 * Waits until `url` answers at all (any status) while `child` runs: for servers that take a port from their config
 * file and print nothing when ready (nginx, HAProxy).
 */
export async function waitUntilServing(child: Child, url: string, request: RequestShape, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!child.running()) await exitedEarly(child);
    try {
      await probe(url, request);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${child.name} did not answer ${url} within ${timeoutMs / 1000} s: ${(err as Error).message}`);
    }
    await sleep(100);
  }
}
