import { execFileSync } from 'node:child_process';
import { closeSync, openSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { findExecutable, freePort, type Child, type ProcessGroup } from '../processes.js';
import { routesYaml, type Scenario, type TlsFiles } from '../scenarios/scenario.js';
import { countAccessLines, NODE_SERVERS, probe, startAnnouncedServer, startGantry, tail, waitUntilServing } from '../targets.js';

/**
 * One system the benchmark measures: the upstream itself (direct, the limit), Gantry, or a peer proxy. Every system
 * is started in front of the same upstream, and all of them run side by side while the rounds alternate between them.
 */
export interface System {
  /** Its row in the table; `--systems` picks by it. */
  readonly name: string;
  /** direct: the limit; gantry: the system under test; server: nginx and HAProxy; node: the Node peers. */
  readonly kind: 'direct' | 'gantry' | 'server' | 'node';
  /** One line for --help and the output: what it is and how it is configured. */
  readonly summary: string;
  /**
   * Whether it runs on the proxy CPU like every other proxy (true), or on every CPU (the multi-worker comparison,
   * where pinning to one CPU would defeat the point).
   */
  readonly pinned: boolean;
  /** The Debian package that brings it, for the runner's one `apt-get install` (nginx, HAProxy). */
  readonly aptPackage?: string;
  /** Whether it is set up to serve the TLS scenarios (Scenario.tls); the others skip them. */
  readonly tls: boolean;
  /** Why it cannot run on this machine at all (e.g. "not installed; apt-get install nginx"), or null. */
  unavailable(): string | null;
  start(ctx: StartContext): Promise<RunningSystem>;
}

export interface StartContext {
  readonly group: ProcessGroup;
  /** A directory of its own in the run's work dir, for its config and logs. */
  readonly dir: string;
  readonly upstreamPort: number;
  readonly scenario: Scenario;
  /** taskset -c list for it, or undefined for none. */
  readonly cpu: string | undefined;
  /** In a TLS scenario, the certificate to serve (and the port returned is the HTTPS one); null otherwise. */
  readonly tls: TlsFiles | null;
  /** Hard cap on the life of anything it starts (see ProcessGroup.spawn). */
  readonly maxLifetimeS: number;
}

export interface RunningSystem {
  /** Its processes, measured as "CPU proxy"; null for direct, where nothing stands between the client and upstream. */
  readonly child: Child | null;
  readonly port: number;
  /**
   * How it was started, for the output and RESULTS.md: the command, its config, its log. Paths in its directory are
   * written `<dir>/…`, and the CPU placement is added by the runner.
   */
  readonly setup: string;
  /** Checks it can make once it is up (e.g. Gantry's /readyz); throws when it is not fit to measure. */
  ready(): Promise<void>;
  /** Stops it after its last round; lines for the report (e.g. access-log lines versus the `responses` counted). */
  finish(group: ProcessGroup, responses: number): Promise<FinishNotes>;
}

export interface FinishNotes {
  readonly notes: readonly string[];
  readonly warnings: readonly string[];
}

const NO_NOTES: FinishNotes = { notes: [], warnings: [] };

/**
 * Straight at the upstream: no proxy, so the most any proxy could reach in this setup. In a TLS scenario, the same
 * answers from a Node server that terminates TLS itself (HTTP/2 and HTTP/1.1), started on the proxy CPU like a proxy:
 * what TLS costs Node with nothing forwarded, measured as "CPU proxy".
 */
export const direct: System = {
  name: 'direct', kind: 'direct', summary: 'straight to the upstream (no proxy): the limit', pinned: true, tls: true,
  unavailable: () => null,
  async start(ctx) {
    if (ctx.tls === null) {
      return { child: null, port: ctx.upstreamPort, setup: '`node dist/bench/node-servers.js upstream`', ready: async () => {}, finish: async () => NO_NOTES };
    }
    const args = ['upstream-tls', String(ctx.scenario.upstreamBodyBytes), ctx.tls.cert, ctx.tls.key];
    const s = await startAnnouncedServer(ctx.group, 'direct', NODE_SERVERS, args, ctx.cpu, ctx.maxLifetimeS);
    return {
      child: s.child, port: s.port, ready: async () => {},
      setup: '`node dist/bench/node-servers.js upstream-tls …`: the upstream\'s answers from a Node http2 secure server (allowHTTP1), no proxy',
      async finish(group) { await group.stop(s.child); return NO_NOTES; },
    };
  },
};

/**
 * Gantry as a user runs it: `node dist/gateway/cli.js start -c routes.yaml` with the scenario's routes file (access
 * log on, every default feature on), stdout (the JSON log) to a file. `workers` adds `--workers N`.
 */
export function gantrySystem(name: string, summary: string, pinned: boolean, workers?: number): System {
  return {
    name, kind: 'gantry', summary, pinned, tls: true,
    unavailable: () => null,
    async start(ctx) {
      const yaml = routesYaml(ctx.scenario, `http://127.0.0.1:${ctx.upstreamPort}`, ctx.tls ?? undefined);
      const g = await startGantry(ctx.group, { dir: ctx.dir, routesYaml: yaml, cpu: ctx.cpu, maxLifetimeS: ctx.maxLifetimeS, workers });
      const command = `node dist/gateway/cli.js start -c routes.yaml${workers === undefined ? '' : ` --workers ${workers}`}`;
      if (ctx.tls && g.tlsPort === null) throw new Error(`${name} logged no TLS listener in its "started" line`);
      return {
        child: g.child,
        port: ctx.tls ? g.tlsPort! : g.port,
        setup: `\`${command}\` (<dir>/routes.yaml${ctx.tls ? ', with a tls: block: HTTP/2 and HTTP/1.1, every TLS setting at its default' : ''}); access log on: stdout (JSON lines) to <dir>/gantry.log`,
        async ready() {
          if (g.adminPort === null) return;
          const r = await probe(`http://127.0.0.1:${g.adminPort}/readyz`);
          if (r.status !== 200) throw new Error(`${name} /readyz answered ${r.status}`);
        },
        // Stopped gracefully (SIGTERM drains) so its asynchronous log is flushed, then every response must be logged.
        async finish(group, responses) {
          const stopped = await group.stop(g.child);
          const access = await countAccessLines(g.logFile);
          const logMiB = statSync(g.logFile).size / 2 ** 20;
          const warnings: string[] = [];
          if (access.lines < responses) warnings.push(`${name} logged ${access.lines} access lines for ${responses} responses`);
          if (stopped.code !== 0) warnings.push(`${name} exited with ${stopped.code ?? stopped.signal} on SIGTERM`);
          const n = (x: number) => x.toLocaleString('en-US');
          return { notes: [`${name} access log: ${n(access.lines)} lines (${logMiB.toFixed(0)} MiB) for ${n(responses)} responses counted through it`], warnings };
        },
      };
    },
  };
}

export interface NativeServer {
  readonly name: string;
  /** Its executable, and the Debian package that brings it. */
  readonly binary: string;
  readonly aptPackage: string;
  /** How to pick the version out of what `BINARY -v` prints (stdout + stderr). */
  readonly versionPattern: RegExp;
  /** What its config sets, for the summary (without the version). */
  readonly describe: string;
  /** Whether config() can serve the TLS scenarios (ctx.tls). */
  readonly tls: boolean;
  /**
   * The config file's text for a server on 127.0.0.1:`port` in front of the upstream, logs and state under `dir`;
   * `version` is the one `BINARY -v` printed.
   */
  config(dir: string, port: number, ctx: StartContext, version: string): string;
  /** After it stopped: lines for the report read from its logs (e.g. how many TLS sessions were resumed). */
  logNotes?(dir: string, ctx: StartContext): Promise<FinishNotes>;
  /** Arguments to run it in the foreground with that config. */
  args(dir: string, configFile: string): readonly string[];
  /** One line on its access log for the setup line. */
  accessLog(dir: string): string;
}

/** Debian puts nginx and haproxy in /usr/sbin, which is not on every PATH. */
const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

function version(path: string, s: NativeServer): string {
  let text: string;
  // nginx -v prints to stderr, haproxy -v to stdout: merge them.
  try {
    text = execFileSync('sh', ['-c', '"$0" -v 2>&1', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    text = String((err as { stdout?: string }).stdout ?? '');
  }
  return s.versionPattern.exec(text)?.[1] ?? 'unknown version';
}

/** An argument as a shell would need it, for a command line someone may copy. */
function shellWord(arg: string): string {
  return /^[\w./=:,@+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** nginx or HAProxy: a binary from Debian, a config file written to its dir, run in the foreground. */
export function nativeSystem(s: NativeServer): System {
  const path = () => findExecutable(s.binary, SBIN);
  return {
    name: s.name, kind: 'server', pinned: true, aptPackage: s.aptPackage, tls: s.tls,
    get summary() {
      const p = path();
      return `${p ? `${s.name} ${version(p, s)}` : s.name}: ${s.describe}`;
    },
    unavailable: () => (path() ? null : `not installed; apt-get install -y ${s.aptPackage}`),
    async start(ctx) {
      const binary = path();
      if (!binary) throw new Error(`${s.binary} is not installed`);
      const port = await freePort();
      const configFile = join(ctx.dir, `${s.name}.conf`);
      writeFileSync(configFile, s.config(ctx.dir, port, ctx, version(binary, s)));
      const outFile = join(ctx.dir, 'stdout-stderr.log');
      const out = openSync(outFile, 'w');
      let child;
      try {
        child = ctx.group.spawn(s.name, binary, s.args(ctx.dir, configFile), { cpu: ctx.cpu, stdio: ['ignore', out, out], maxLifetimeS: ctx.maxLifetimeS });
      } finally {
        closeSync(out);
      }
      try {
        await waitUntilServing(child, `${ctx.tls ? 'https' : 'http'}://127.0.0.1:${port}/`, { method: 'GET', headers: {}, body: '' });
      } catch (err) {
        await ctx.group.stop(child);
        throw new Error(`${(err as Error).message}\n${tail(outFile)}${tail(join(ctx.dir, 'error.log'))}`, { cause: err });
      }
      return {
        child, port,
        setup: `\`${s.binary} ${s.args(ctx.dir, configFile).map(shellWord).join(' ')}\`; ${s.accessLog(ctx.dir)}`.replaceAll(ctx.dir, '<dir>'),
        ready: async () => {},
        async finish(group) {
          await group.stop(child);
          return (await s.logNotes?.(ctx.dir, ctx)) ?? NO_NOTES;
        },
      };
    },
  };
}

const require = createRequire(import.meta.url);

/** The installed version of an npm package, for the summary. */
export function packageVersion(pkg: string): string {
  try { return (require(`${pkg}/package.json`) as { version: string }).version; } catch { return '?'; }
}

/** A Node peer: `node dist/bench/node-servers.js NAME UPSTREAM` on the proxy CPU; no access log. */
export function nodePeer(name: string, packages: readonly string[], summary: string): System {
  return {
    name, kind: 'node', summary, pinned: true, tls: false,
    unavailable() {
      const missing = packages.filter((p) => { try { require.resolve(p); return false; } catch { return true; } });
      return missing.length ? `not installed (${missing.join(', ')}); npm install` : null;
    },
    async start(ctx) {
      const s = await startAnnouncedServer(ctx.group, name, NODE_SERVERS, [name, `http://127.0.0.1:${ctx.upstreamPort}`], ctx.cpu, ctx.maxLifetimeS);
      return {
        child: s.child, port: s.port,
        setup: `\`node dist/bench/node-servers.js ${name}\`; no access log`,
        ready: async () => {},
        async finish(group) { await group.stop(s.child); return NO_NOTES; },
      };
    },
  };
}
