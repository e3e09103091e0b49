import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable, freePort } from '../processes.js';
import { tail, waitUntilServing } from '../targets.js';
import { NO_NOTES, type StartContext, type System } from './system.js';

/** Debian puts nginx and haproxy in /usr/sbin, which is not on every PATH. */
const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

export interface NativeServer {
  readonly name: string;
  /** Its executable, and the Debian package that brings it. */
  readonly binary: string;
  readonly aptPackage: string;
  /** Arguments that print its version, and how to pick the version out of what it prints (stdout + stderr). */
  readonly versionArgs: readonly string[];
  readonly versionPattern: RegExp;
  /** What its config sets, for the summary (without the version). */
  readonly describe: string;
  /** The config file's text for a server on 127.0.0.1:`port` in front of the upstream, logs and state under `dir`. */
  config(dir: string, port: number, ctx: StartContext): string;
  /** Arguments to run it in the foreground with that config. */
  args(dir: string, configFile: string): readonly string[];
  /** One line on its access log for the setup line. */
  readonly accessLog: (dir: string) => string;
}

function version(path: string, s: NativeServer): string {
  let text: string;
  // nginx -v prints to stderr, haproxy -v to stdout: merge them.
  try {
    text = execFileSync('sh', ['-c', '"$0" "$@" 2>&1', path, ...s.versionArgs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    text = String((err as { stdout?: string }).stdout ?? '');
  }
  return s.versionPattern.exec(text)?.[1] ?? 'unknown version';
}

/** nginx or HAProxy as a system: a binary from Debian, a config file written to its dir, run in the foreground. */
export function nativeSystem(s: NativeServer): System & { readonly aptPackage: string } {
  const path = () => findExecutable(s.binary, SBIN);
  return {
    name: s.name, kind: 'server', pinned: true, aptPackage: s.aptPackage,
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
      writeFileSync(configFile, s.config(ctx.dir, port, ctx));
      const outFile = join(ctx.dir, 'stdout-stderr.log');
      const out = openSync(outFile, 'w');
      let child;
      try {
        child = ctx.group.spawn(s.name, binary, s.args(ctx.dir, configFile), { cpu: ctx.cpu, stdio: ['ignore', out, out], maxLifetimeS: ctx.maxLifetimeS });
      } finally {
        closeSync(out);
      }
      try {
        await waitUntilServing(child, `http://127.0.0.1:${port}/`, { method: 'GET', headers: {}, body: '' });
      } catch (err) {
        await ctx.group.stop(child);
        throw new Error(`${(err as Error).message}\n${tail(outFile)}${tail(join(ctx.dir, 'error.log'))}`, { cause: err });
      }
      return {
        child, port,
        setup: `\`${s.binary} ${s.args(ctx.dir, configFile).map(shellWord).join(' ')}\`; ${s.accessLog(ctx.dir)}`.replaceAll(ctx.dir, '<dir>'),
        ready: async () => {},
        async finish(group) { await group.stop(child); return NO_NOTES; },
      };
    },
  };
}

/** An argument as a shell would need it, for a command line someone may copy. */
function shellWord(arg: string): string {
  return /^[\w./=:,@+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
