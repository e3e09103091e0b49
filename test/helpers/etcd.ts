import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './capture-log.js';
import { freePort } from './free-port.js';

export interface EtcdServer {
  readonly url: string;
  /** Stops etcd the hard way (SIGKILL), as a crash or a lost host would. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Debian's etcd-server on free loopback ports with a temporary data directory; resolves once /health says true. */
export async function startEtcd(): Promise<EtcdServer> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | null = null;
  let output = '';

  async function start(): Promise<void> {
    output = '';
    const c = spawn('etcd', [
      '--name', 'default', '--data-dir', join(dir, 'data'), '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `default=${peer}`,
      '--log-level', 'warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    c.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
    c.once('error', (err) => { output += `spawn error: ${err.message}`; });
    const healthy = async () => {
      if (c.exitCode !== null || output.includes('spawn error')) throw new Error(`etcd did not start: ${output}`);
      try {
        const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
        return r.ok && ((await r.json()) as { health?: string }).health === 'true';
      } catch { return false; }
    };
    await waitFor(healthy, 10_000, 'etcd healthy', 50).catch((err: Error) => {
      c.kill('SIGKILL');
      throw new Error(`${err.message}: ${output}`);
    });
  }

  async function halt(signal: NodeJS.Signals): Promise<void> {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  }

  await start();
  return {
    url,
    kill: () => halt('SIGKILL'),
    restart: start,
    stop: async () => { await halt('SIGTERM'); await rm(dir, { recursive: true, force: true }); },
  };
}
