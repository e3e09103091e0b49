import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { findExecutable } from './processes.js';
import { tail } from './targets.js';

/** apt-get gets this long (the lock wait included) before the run goes on without the servers it did not bring. */
const INSTALL_TIMEOUT_S = 300;

/**
 * "Installs or skips": when the run wants nginx or HAProxy and they are missing, and it runs as root with apt-get,
 * one non-interactive `apt-get install -y` for all of them, bounded by `timeout`. Returns why it did not install,
 * or null when it tried (the caller checks again what is there now). Nothing is started as a service: this only
 * puts the binaries in place (Debian containers forbid service starts via policy-rc.d; on a full system the
 * packaged service may start on port 80, which the benchmark does not use).
 */
export async function installServers(packages: readonly string[], noInstall: boolean, logFile: string): Promise<string | null> {
  if (packages.length === 0) return null;
  if (noInstall) return '--no-install given';
  if (process.getuid?.() !== 0) return 'not running as root';
  const aptGet = findExecutable('apt-get');
  if (!aptGet) return 'no apt-get on this machine';
  const timeout = findExecutable('timeout');
  const command = [aptGet, 'install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=60', ...packages];
  const argv = timeout ? [timeout, '--kill-after=10', `${INSTALL_TIMEOUT_S}s`, ...command] : command;
  process.stdout.write(`installing ${packages.join(' ')}: apt-get install -y (non-interactive, up to ${INSTALL_TIMEOUT_S} s; --no-install skips this; log in ${logFile})\n`);
  const out = openSync(logFile, 'w');
  let code: number | null;
  try {
    code = await new Promise<number | null>((resolve) => {
      const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', out, out], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      proc.once('error', () => resolve(null));
      proc.once('exit', (c) => resolve(c));
    });
  } finally {
    closeSync(out);
  }
  if (code !== 0) {
    const why = code === 124 ? `timed out after ${INSTALL_TIMEOUT_S} s` : `exited with ${code ?? 'an error'}`;
    process.stdout.write(`apt-get install ${why}:\n${tail(logFile, 5)}`);
    return `apt-get install ${why} (apt-get update first?)`;
  }
  return null;
}
