import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * The absolute path of `name` on $PATH (then in `alsoIn`), or null. nginx and haproxy live in /usr/sbin, which a
 * non-root PATH often lacks.
 */
export function findExecutable(name: string, alsoIn: readonly string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...alsoIn]) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch { /* not here */ }
  }
  return null;
}

/** Which CPU each side of the benchmark runs on. */
export interface Pinning {
  readonly enabled: boolean;
  /** CPU list for the proxy under test (taskset -c), when enabled: every proxy system gets the same one. */
  readonly proxyCpu: string;
  /** CPU list for the upstream and the load generator, when enabled. */
  readonly clientCpu: string;
  /** One line for the output: what was pinned where, or why nothing was. */
  readonly description: string;
}

export function detectPinning(disabled: boolean): Pinning {
  const off = (why: string): Pinning => ({ enabled: false, proxyCpu: '', clientCpu: '', description: `none (${why}); every process shares all CPUs` });
  if (disabled) return off('--no-pin');
  if (!findExecutable('taskset')) return off('taskset not found');
  const cpus = availableParallelism();
  if (cpus < 2) return off(`only ${cpus} CPU available`);
  return {
    enabled: true, proxyCpu: '0', clientCpu: '1',
    description: 'taskset -c 0 for the proxy under test (every proxy system alike); taskset -c 1 for the upstream and the load generator',
  };
}

export interface ExitStatus { readonly code: number | null; readonly signal: NodeJS.Signals | null }

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Settles when the process has exited (or could not be started: then code is null and `error` is set). */
  readonly exited: Promise<ExitStatus & { error?: Error }>;
  readonly running: () => boolean;
}

export interface SpawnOptions {
  /** taskset -c CPU, when set and taskset exists. */
  readonly cpu?: string;
  readonly stdio?: StdioOptions;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Hard cap on the child's life, enforced by coreutils `timeout` outside this process: if the runner itself is
   * killed (even with SIGKILL) nothing it started outlives this many seconds.
   */
  readonly maxLifetimeS: number;
}

/**
 * Run in front of every child: 1 000 client connections through a proxy need more than 2 000 descriptors (client and
 * upstream side), more than the common soft limit of 1024. Raise it as far as allowed (root may go past the hard
 * limit), then exec the command, so the pid, the process group and the signals stay the command's own.
 */
const RAISE_OPEN_FILES = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';

/**
 * Every process the benchmark starts. Each child leads its own process group (detached), so a kill reaches whatever
 * it exec'd or forked (`timeout` -> `taskset` -> node), and a Ctrl-C reaches only the runner, which then stops them
 * in order.
 */
export class ProcessGroup {
  readonly #children = new Set<Child>();
  readonly #timeout = findExecutable('timeout');
  readonly #taskset = findExecutable('taskset');

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions): Child {
    const argv: string[] = [];
    // --foreground: timeout passes a signal on to the command once (without it, it sends it to the command and to
    // the whole group, and Gantry, which handles one SIGTERM, would die of the second before flushing its log).
    if (this.#timeout) argv.push(this.#timeout, '--foreground', '--kill-after=5', `${Math.ceil(options.maxLifetimeS)}s`);
    if (options.cpu !== undefined && this.#taskset) argv.push(this.#taskset, '-c', options.cpu);
    argv.push('sh', '-c', RAISE_OPEN_FILES, 'sh', command, ...args);
    const proc = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: options.stdio ?? 'ignore', env: options.env ?? process.env });
    let alive = true;
    const exited = new Promise<ExitStatus & { error?: Error }>((resolve) => {
      proc.once('error', (error) => { alive = false; resolve({ code: null, signal: null, error }); });
      proc.once('exit', (code, signal) => { alive = false; resolve({ code, signal }); });
    });
    const child: Child = { name, proc, exited, running: () => alive };
    this.#children.add(child);
    void exited.then(() => this.#children.delete(child));
    return child;
  }

  /**
   * SIGTERM to the child (a `timeout` leader passes it on, once), SIGKILL to its whole process group if it is still
   * there after graceMs, and in any case to whatever it left behind in its group.
   */
  async stop(child: Child, graceMs = 3000): Promise<ExitStatus> {
    if (!child.running()) return child.exited;
    try { if (child.proc.pid !== undefined) process.kill(child.proc.pid, 'SIGTERM'); } catch { /* already gone */ }
    let timer: NodeJS.Timeout | undefined;
    const status = await Promise.race([
      child.exited,
      new Promise<null>((resolve) => { timer = setTimeout(resolve, graceMs, null); }),
    ]);
    clearTimeout(timer);
    signalGroup(child, 'SIGKILL');
    return status ?? child.exited;
  }

  /** Stops every child still running, newest first (the load generator before the gateway before the upstream). */
  async stopAll(): Promise<void> {
    for (const child of [...this.#children].reverse()) await this.stop(child);
  }

  /** Last resort from a process 'exit' handler, where nothing asynchronous runs: SIGKILL every group. */
  killAllSync(): void {
    for (const child of this.#children) signalGroup(child, 'SIGKILL');
    this.#children.clear();
  }
}

function signalGroup(child: Child, signal: NodeJS.Signals): void {
  const pid = child.proc.pid;
  if (pid === undefined) return;
  try { process.kill(-pid, signal); } catch { /* already gone */ }
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try { clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { clockTicks = 100; }
  }
  return clockTicks;
}

/**
 * CPU seconds (user + system) used so far by every live process in the child's process group, read from /proc.
 * null where /proc is not there. Sampled before and after a round, it tells whether a process was the bottleneck.
 */
export function groupCpuSeconds(child: Child): number | null {
  const pgid = child.proc.pid;
  if (pgid === undefined) return null;
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return null; }
  let ticks = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8'); } catch { continue; }
    // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / ticksPerSecond();
}

/** CPU seconds of this process itself, and of the children it has reaped (with everything they reaped in turn). */
function selfCpuSeconds(): { self: number; reaped: number } | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { self: (f[11]! + f[12]!) / ticksPerSecond(), reaped: (f[13]! + f[14]!) / ticksPerSecond() };
  } catch {
    return null;
  }
}

export interface CpuSnapshot {
  readonly at: number;
  readonly machine: number | null;
  readonly own: { self: number; reaped: number } | null;
  readonly groups: readonly (number | null)[];
}

/** CPU seconds so far: the whole machine, this runner and its reaped children, and each given child's group. */
export function cpuSnapshot(children: readonly Child[]): CpuSnapshot {
  const m = cpuTimes();
  return { at: performance.now(), machine: m ? m.busy / ticksPerSecond() : null, own: selfCpuSeconds(), groups: children.map(groupCpuSeconds) };
}

export interface CpuUse {
  /** % of one core used by each child group, in the order given to cpuSnapshot. */
  readonly groups: readonly (number | null)[];
  /** % of one core used by children that ended in between: the load generator of a round. */
  readonly reaped: number | null;
  /** % of one core used by everything else on the machine: other people's builds, tests, benchmarks. */
  readonly other: number | null;
}

export function cpuUse(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const wall = (b.at - a.at) / 1000;
  const pct = (x: number | null) => (x === null ? null : (100 * x) / wall);
  const groups = a.groups.map((g, i) => { const h = b.groups[i]; return g === null || h === null || h === undefined ? null : h - g; });
  const reaped = a.own && b.own ? b.own.reaped - a.own.reaped : null;
  let other: number | null = null;
  if (a.machine !== null && b.machine !== null && a.own && b.own && reaped !== null && groups.every((g) => g !== null)) {
    const ours = b.own.self - a.own.self + reaped + groups.reduce((n: number, g) => n + g!, 0);
    other = Math.max(0, b.machine - a.machine - ours);
  }
  return { groups: groups.map(pct), reaped: pct(reaped), other: pct(other) };
}

function cpuTimes(): { busy: number; total: number } | null {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    // cpu  user nice system idle iowait irq softirq steal ...
    const f = first.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
  } catch {
    return null;
  }
}

/**
 * How busy the whole machine is while this process waits, in % of all CPUs; null where /proc is missing. Taken before
 * the run, it tells whether something else (a build, another benchmark) will be competing with the measurement.
 */
export async function machineBusyPct(sampleMs = 1000): Promise<number | null> {
  const a = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, sampleMs));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return null;
  return (100 * (b.busy - a.busy)) / (b.total - a.total);
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for servers whose config needs a port number (nginx, HAProxy)
 * rather than taking port 0 and saying which one they got. Another process could take it in between; the server
 * would then fail to start and say so.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whatever happens, nothing `group` started outlives the runner: killed at exit, and on SIGINT/SIGTERM stopped in
 * order, `workDir()` removed (when set), then exit 130. `onSignal` runs first (the runner marks itself interrupted).
 */
export function stopChildrenOnExit(group: ProcessGroup, workDir: () => string | undefined, onSignal: () => void): void {
  process.on('exit', () => group.killAllSync());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      onSignal();
      process.stderr.write(`\n${signal}: stopping every child process\n`);
      void group.stopAll().finally(() => {
        const dir = workDir();
        if (dir) rmSync(dir, { recursive: true, force: true });
        process.exit(130);
      });
    });
  }
}
