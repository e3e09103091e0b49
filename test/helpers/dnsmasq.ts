import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './capture-log.js';
import { freePort } from './free-port.js';

export interface Dnsmasq {
  readonly port: number;
  readonly server: string;
  readonly dir: string;
  /** Lines dnsmasq logged (with --log-queries, one per question). */
  readonly log: string[];
  /** Rewrites the addn-hosts file and sends SIGHUP (dnsmasq re-reads hosts files on HUP, not its options). */
  setHosts(text: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts Debian's dnsmasq on a free loopback port, authoritative for `.test` (unknown names get NXDOMAIN instead of
 * being forwarded), with an addn-hosts file the test can change. `args` adds records (--srv-host, --host-record...).
 */
export async function startDnsmasq(args: string[], options: { port?: number; hosts?: string; dir?: string } = {}): Promise<Dnsmasq> {
  const port = options.port ?? await freePort();
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'gantry-dnsmasq-'));
  // dnsmasq drops root for its own user, which must still read the hosts file on SIGHUP.
  await chmod(dir, 0o755);
  const hostsFile = join(dir, 'hosts');
  const confFile = join(dir, 'dnsmasq.conf');
  await writeFile(hostsFile, options.hosts ?? '', { mode: 0o644 });
  await writeFile(confFile, '', { mode: 0o644 });
  const log: string[] = [];
  const child: ChildProcess = spawn('dnsmasq', [
    '--no-daemon', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
    `--conf-file=${confFile}`, `--addn-hosts=${hostsFile}`, '--pid-file=', '--local=/test/', '--log-facility=-', '--log-queries',
    ...args,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let pending = '';
  const onData = (c: Buffer) => {
    pending += c.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    log.push(...lines);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => log.push(`spawn error: ${err.message}`));
  const outcome = await waitFor(() => (log.some((l) => l.includes('read ' + hostsFile)) ? 'started'
    : child.exitCode !== null || log.some((l) => l.startsWith('spawn error')) ? 'failed' : undefined), 5000, 'dnsmasq started', 20)
    .catch(() => 'failed');
  if (outcome === 'failed') {
    child.kill('SIGKILL');
    throw new Error(`dnsmasq did not start: ${log.join('\n')}`);
  }
  return {
    port, server: `127.0.0.1:${port}`, dir, log,
    setHosts: async (text) => {
      const before = log.length;
      await writeFile(hostsFile, text);
      child.kill('SIGHUP');
      await waitFor(() => log.slice(before).some((l) => l.includes('read ' + hostsFile)), 3000, 'dnsmasq re-read its hosts file', 10);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
