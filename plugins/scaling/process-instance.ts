import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';

export interface InstanceSpec {
  readonly service: string;
  readonly command: readonly string[];
  readonly cwd?: string;
  readonly env: Readonly<Record<string, string>>;
  readonly host: string;
  readonly portEnv: string;
  readonly healthPath: string;
  readonly healthIntervalMs: number;
  readonly startTimeoutMs: number;
  readonly output: 'log' | 'inherit' | 'ignore';
}

export type InstanceState = 'starting' | 'ready' | 'stopping' | 'exited';

/** A free port on `host`, from the OS (bind port 0, read it, close). The child binds it right after. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One GET of the health path: true for a 2xx or 3xx answer within `timeoutMs`. */
function probe(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, agent: false, timeout: timeoutMs, headers: { 'user-agent': 'gantry-process-scaler', connection: 'close' } }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

/**
 * util-linux's setpriv (in every Debian and most Linux systems): `--pdeathsig TERM` makes the kernel send SIGTERM to
 * an instance when the gateway dies, even by SIGKILL. Without it a gateway killed by the OOM killer or `kill -9`
 * left every instance running, holding its memory and port, and its restart started a new set beside them.
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * The executable `file` names, found as spawn would (a path with a slash from `cwd`, else on PATH); undefined if none.
 * Resolved here because setpriv runs it: a missing command must still fail as ENOENT, not as setpriv's exit 127.
 */
export function findExecutable(file: string, cwd: string, path: string | undefined): string | undefined {
  const candidates = file.includes('/') ? [resolve(cwd, file)] : (path ?? '').split(delimiter).filter(Boolean).map((dir) => resolve(cwd, join(dir, file)));
  return candidates.find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
}

let nextId = 1;

/**
 * One child process of the process scaler: started on a free loopback port (passed in the environment as PORT),
 * ready once its health path answers, stopped with SIGTERM and, past the grace, SIGKILL.
 */
export class ProcessInstance {
  readonly id = nextId++;
  state: InstanceState = 'starting';
  port = 0;
  child: ChildProcess | undefined;
  readonly startedAt: number;
  readyAt = 0;
  /** Resolves when the process is gone (or never started), with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>;
  #markExited!: (v: { code: number | null; signal: NodeJS.Signals | null; error?: string }) => void;
  #stopping = false;

  constructor(private readonly spec: InstanceSpec, private readonly log: Logger, now: number) {
    this.startedAt = now;
    this.exited = new Promise((resolve) => { this.#markExited = resolve; });
  }

  get address(): string {
    const host = this.spec.host.includes(':') ? `[${this.spec.host}]` : this.spec.host;
    return `http://${host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns and waits for health. Resolves true when ready, false when it died or timed out (then it is stopped). */
  async start(): Promise<boolean> {
    const { spec } = this;
    try {
      this.port = await freePort(spec.host);
    } catch (err) {
      this.#exit({ code: null, signal: null, error: `no free port: ${(err as Error).message}` });
      return false;
    }
    if (this.#stopping) { this.#exit({ code: null, signal: null }); return false; }
    const [file, ...args] = spec.command as [string, ...string[]];
    // `node` means the Node that runs the gateway, so the instances use the same version whatever PATH says.
    const executable = file === 'node' ? process.execPath : file;
    const env = { ...process.env, ...spec.env, [spec.portEnv]: String(this.port), GANTRY_SERVICE: spec.service, GANTRY_INSTANCE: String(this.id) };
    const stdio = spec.output === 'log' ? 'pipe' : spec.output;
    const found = SETPRIV && findExecutable(executable, spec.cwd ?? process.cwd(), env.PATH);
    if (SETPRIV && !found) {
      this.#exit({ code: null, signal: null, error: `spawn ${executable} ENOENT: not found or not executable` });
      return false;
    }
    // Its own process group: a Ctrl-C in the gateway's terminal reaches the gateway, which then stops its instances
    // gracefully after draining, instead of killing them mid-request (and seeing them as crashed).
    const child = found
      ? spawn(SETPRIV as string, ['--pdeathsig', 'TERM', '--', found, ...args], { cwd: spec.cwd, env, stdio: ['ignore', stdio, stdio], detached: true })
      : spawn(executable, args, { cwd: spec.cwd, env, stdio: ['ignore', stdio, stdio], detached: true });
    this.child = child;
    child.once('error', (err) => this.#exit({ code: null, signal: null, error: err.message }));
    child.once('exit', (code, signal) => this.#exit({ code, signal }));
    if (spec.output === 'log') {
      for (const [stream, name] of [[child.stdout, 'stdout'], [child.stderr, 'stderr']] as const) {
        if (!stream) continue;
        createInterface({ input: stream }).on('line', (line) => this.log.info({ instance: this.id, port: this.port, stream: name }, line));
      }
    }
    this.log.info({ event: 'instance-starting', instance: this.id, pid: child.pid, port: this.port }, `starting instance ${this.id} on ${this.address}`);
    const deadline = Date.now() + spec.startTimeoutMs;
    while (this.state === 'starting' && !this.#stopping) {
      if (await probe(spec.host, this.port, spec.healthPath, Math.min(1000, spec.healthIntervalMs * 10))) {
        if (this.state !== 'starting' || this.#stopping) return false;
        this.state = 'ready';
        this.readyAt = Date.now();
        return true;
      }
      if (Date.now() >= deadline) {
        this.log.warn({ event: 'instance-start-timeout', instance: this.id, startTimeoutMs: spec.startTimeoutMs, healthPath: spec.healthPath }, `instance ${this.id} did not pass its health check in time`);
        await this.stop(1000);
        return false;
      }
      await delay(spec.healthIntervalMs);
    }
    return false;
  }

  #exit(v: { code: number | null; signal: NodeJS.Signals | null; error?: string }): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    this.#markExited(v);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    if (this.state !== 'exited') this.state = 'stopping';
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      if (!child) this.#exit({ code: null, signal: null });
      await this.exited;
      return;
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.log.warn({ event: 'instance-killed', instance: this.id, graceMs }, `instance ${this.id} ignored SIGTERM for ${graceMs} ms: SIGKILL`);
      child.kill('SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Last resort when the gateway itself exits: no grace. */
  kill(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
