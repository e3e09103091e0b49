/**
 * What the capacity benchmarks (reload-stall.ts, idle-connections.ts) share: a process group that nothing outlives
 * (Ctrl-C, errors and the runner's own exit stop every child), a work directory, Gantry's JSON log read as it grows,
 * and a dated section appended to bench/RESULTS.md.
 */
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineBusyPct, ProcessGroup, stopChildrenOnExit, type Child } from './processes.js';
import { machineInfo } from './report.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface CapacityRun {
  readonly group: ProcessGroup;
  /** Temporary files of this run; removed at the end, kept after an error. */
  readonly workDir: string;
  readonly interrupted: () => boolean;
}

/** Runs `main` with cleanup wired; its return value is the exit code. */
export function runCapacityBench(name: string, main: (run: CapacityRun) => Promise<number>): void {
  const group = new ProcessGroup();
  const workDir = mkdtempSync(join(tmpdir(), `gantry-${name}-`));
  let interrupted = false;
  stopChildrenOnExit(group, () => workDir, () => { interrupted = true; });
  main({ group, workDir, interrupted: () => interrupted }).then(
    async (code) => {
      await group.stopAll();
      rmSync(workDir, { recursive: true, force: true });
      process.exitCode = code;
    },
    async (err: Error) => {
      process.stderr.write(`${name}: ${err.stack ?? err.message}\nlogs kept in ${workDir}\n`);
      await group.stopAll();
      process.exitCode = 1;
    },
  );
}

/** Gantry's JSON log file, read as it grows: each call returns lines not seen before. */
export class LogFollower {
  #offset = 0;
  constructor(readonly file: string) {}

  /** Skips everything logged so far. */
  skip(): void {
    this.#offset = readFileSync(this.file).length;
  }

  #newLines(): Record<string, unknown>[] {
    const buf = readFileSync(this.file);
    const end = buf.lastIndexOf(10) + 1;
    if (end <= this.#offset) return [];
    const text = buf.subarray(this.#offset, end).toString('utf8');
    this.#offset = end;
    return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** The first new line that satisfies `pred`, polling every 20 ms; throws after timeoutMs. */
  async next(pred: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#newLines().find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching line in ${this.file} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

export interface StartedGantry {
  readonly child: Child;
  readonly port: number;
  readonly adminPort: number;
  readonly logFile: string;
  /** From spawn to the "started" log line. */
  readonly startMs: number;
}

/**
 * Starts `node dist/gateway/cli.js start -c DIR/routes.yaml` like targets.ts startGantry does, but waits up to
 * `readyMs` for its "started" line: a 10 000-route file on a busy machine can take longer than startGantry's 60 s.
 */
export async function startGantryWithin(run: CapacityRun, dir: string, yaml: string, readyMs: number, maxLifetimeS: number, cpu?: string): Promise<StartedGantry> {
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'routes.yaml');
  const logFile = join(dir, 'gantry.log');
  writeFileSync(configFile, yaml);
  const out = openSync(logFile, 'w');
  const started = performance.now();
  let child: Child;
  try {
    const cli = fileURLToPath(new URL('../gateway/cli.js', import.meta.url));
    child = run.group.spawn('gantry', process.execPath, [cli, 'start', '-c', configFile], { cpu, stdio: ['ignore', out, 'inherit'], maxLifetimeS });
  } finally {
    closeSync(out);
  }
  const line = await Promise.race([
    new LogFollower(logFile).next((l) => l.event === 'started', readyMs),
    child.exited.then((s) => { throw new Error(`gantry exited before it was ready (${s.error?.message ?? s.code ?? s.signal}); see ${logFile}`); }),
  ]);
  const at = (k: string) => (line[k] as { port: number }).port;
  return { child, port: at('listen'), adminPort: at('admin'), logFile, startMs: performance.now() - started };
}

/** The lines every RESULTS.md section starts with: machine, its load before the run, Node, Gantry's commit. */
export async function environmentLines(): Promise<{ lines: string[]; busyPct: number | null }> {
  const m = machineInfo(repoRoot);
  const busy = await machineBusyPct();
  const load = busy === null ? 'load unknown' : `${Math.round(busy)}% of all CPUs busy in the second before the run`;
  return {
    busyPct: busy,
    lines: [
      `- Machine: nproc ${m.nproc}, ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.kernel}; ${load}; load average ${loadavg()[0]!.toFixed(1)} (a shared machine: other people's builds and benchmarks may run alongside)`,
      `- Node: ${m.node}`,
      `- Gantry: commit ${m.commit}`,
    ],
  };
}

export function appendResults(section: string): string {
  const file = join(repoRoot, 'bench', 'RESULTS.md');
  appendFileSync(file, section);
  return file;
}
