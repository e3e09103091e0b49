import { closeSync, createReadStream, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Child, ProcessGroup } from './processes.js';

export interface Upstream {
  readonly child: Child;
  readonly port: number;
}

export interface GantryProcess {
  readonly child: Child;
  readonly port: number;
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

/** Starts bench/upstream-server.js and waits for the port it prints. */
export async function startUpstream(group: ProcessGroup, bodyBytes: number, cpu: string | undefined, maxLifetimeS: number): Promise<Upstream> {
  const script = fileURLToPath(new URL('./upstream-server.js', import.meta.url));
  const child = group.spawn('upstream', process.execPath, [script, String(bodyBytes)], { cpu, stdio: ['ignore', 'pipe', 'inherit'], maxLifetimeS });
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
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('upstream did not start within 10 s')), 10_000); }),
      ]),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts Gantry the way a user would: `node dist/gateway/cli.js start -c routes.yaml`, stdout and stderr redirected to
 * files. The port comes from the "started" log line (the config listens on port 0).
 */
export async function startGantry(group: ProcessGroup, workDir: string, routesYaml: string, cpu: string | undefined, maxLifetimeS: number): Promise<GantryProcess> {
  const configFile = join(workDir, 'routes.yaml');
  const logFile = join(workDir, 'gantry.log');
  const stderrFile = join(workDir, 'gantry.stderr.log');
  writeFileSync(configFile, routesYaml);
  const cli = fileURLToPath(new URL('../gateway/cli.js', import.meta.url));
  const out = openSync(logFile, 'w');
  const err = openSync(stderrFile, 'w');
  let child: Child;
  try {
    child = group.spawn('gantry', process.execPath, [cli, 'start', '-c', configFile], { cpu, stdio: ['ignore', out, err], maxLifetimeS });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const deadline = Date.now() + 15_000;
  let checked = 0;
  for (;;) {
    if (!child.running()) {
      const s = await child.exited;
      throw new Error(`gantry exited before it was ready (${s.error?.message ?? s.code ?? s.signal}):\n${tail(stderrFile)}${tail(logFile)}`);
    }
    const text = readFileSync(logFile, 'utf8');
    // Only complete lines; the first few hold the "started" line.
    for (const line of text.slice(checked, text.lastIndexOf('\n') + 1).split('\n')) {
      if (!line.includes('"started"')) continue;
      const started = JSON.parse(line) as { event?: string; listen?: { port: number }; admin?: { port: number } | null };
      if (started.event === 'started' && started.listen) {
        return { child, port: started.listen.port, adminPort: started.admin?.port ?? null, logFile, stderrFile };
      }
    }
    checked = text.lastIndexOf('\n') + 1;
    if (Date.now() > deadline) throw new Error(`gantry did not log "started" within 15 s:\n${tail(stderrFile)}${tail(logFile)}`);
    await sleep(50);
  }
}

function tail(file: string, lines = 20): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text ? `--- ${file} ---\n${text.split('\n').slice(-lines).join('\n')}\n` : '';
  } catch {
    return '';
  }
}

/** One GET on a fresh connection; the status and the body length. */
export function probe(url: string): Promise<{ status: number; bodyBytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' }, timeout: 5000 }, (res) => {
      let bodyBytes = 0;
      res.on('data', (c: Buffer) => { bodyBytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bodyBytes }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** Fails unless `url` answers 200 with exactly `bodyBytes` bytes: a benchmark of error pages would measure nothing. */
export async function expectOk(url: string, bodyBytes: number): Promise<void> {
  const r = await probe(url);
  if (r.status !== 200 || r.bodyBytes !== bodyBytes) {
    throw new Error(`GET ${url}: expected 200 with a ${bodyBytes}-byte body, got ${r.status} with ${r.bodyBytes} bytes`);
  }
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
