import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from './capture-log.js';

const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number | null;
  readonly file: string;
  /** Parsed JSON log lines from stdout, in order. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: () => string;
  rewrite(yaml: string): Promise<void>;
  /** Resolves with the first log line (at or after `from`) that satisfies `pred`. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number, from?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** The gateway's working directory (default: the test's). */
  readonly cwd?: string;
  /** Files written beside routes.yaml, by relative name (directories made as needed). */
  readonly files?: Readonly<Record<string, string | Buffer>>;
  /** Node's own options (before the script). */
  readonly nodeArgs?: readonly string[];
  /** Environment additions for the child. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Runs `gantry start` as a real child process on a temporary routes file; the port comes from the started line. */
export async function spawnGateway(yaml: string, extraArgs: string[] = [], options: SpawnOptions = {}): Promise<GatewayProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-proc-'));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, yaml);
  for (const [name, content] of Object.entries(options.files ?? {})) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'start', '-c', file, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, env: { ...process.env, ...options.env },
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; from: number; resolve: (l: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    logs.push(parsed);
    for (const w of [...waiters]) {
      if (logs.length - 1 >= w.from && w.pred(parsed)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(parsed); }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000, from = 0) => {
    const found = logs.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`log line not seen in ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      waiters.push({ pred, from, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  };
  // A bound, not a speed test: cluster workers load every plugin module in parallel on a shared 2-core machine.
  const started = await Promise.race([
    waitForLog((l) => l.event === 'started', 30_000),
    exited.then(() => { throw new Error(`gantry exited at start: ${stderr}`); }),
  ]).catch((err: unknown) => {
    // Nothing else will stop it: the caller never got a handle to kill.
    child.kill('SIGKILL');
    throw err;
  });
  const listen = started.listen as { port: number };
  const admin = started.admin as { port: number } | null;
  return {
    child, port: listen.port, adminPort: admin?.port ?? null, file, logs, stderr: () => stderr, exited, waitForLog,
    rewrite: (text) => writeFile(file, text),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `n` workers of a `--workers` gateway said they are ready (counting restarted ones). */
export async function workersReady(gw: GatewayProcess, n: number, timeoutMs = 20_000): Promise<void> {
  await waitFor(() => gw.logs.filter((l) => l.event === 'worker-ready').length >= n, timeoutMs, `${n} workers ready`, 20)
    .catch((err: Error) => { throw new Error(`${err.message}; stderr: ${gw.stderr()}`); });
}

/**
 * With --workers the kernel, not the primary, spreads new connections over the workers (SCHED_NONE): no fixed number
 * of requests is sure to reach each one. Repeats `request` until `done()` holds, at most `max` times, and resolves
 * with how many it sent.
 */
export async function repeatUntil(request: () => Promise<unknown>, done: () => boolean, max = 50): Promise<number> {
  let sent = 0;
  while (!done()) {
    if (sent === max) throw new Error(`not done after ${max} requests`);
    await request();
    sent++;
  }
  return sent;
}

/** Processes whose command line names `file` (cluster workers are forked with the primary's arguments). */
export function processesNaming(file: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try { if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(file)) pids.push(Number(entry)); } catch { /* gone */ }
  }
  return pids;
}
