import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { waitFor } from './capture-log.js';
import { freePort } from './free-port.js';

export interface RedisServer {
  readonly url: string;
  readonly child: ChildProcess;
  /** SIGKILL: the store dies under load. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** Whether a PING on `port` gets PONG. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(500, () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => { socket.destroy(); resolve(d.toString().startsWith('+PONG')); });
  });
}

/** Debian's redis-server on a free loopback port, nothing saved to disk; resolves once it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let output = '';
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server did not start: ${output}`);
    return pong(port);
  }, 10_000, 'redis-server answering PING', 20);
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { url: `redis://127.0.0.1:${port}`, child, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}
