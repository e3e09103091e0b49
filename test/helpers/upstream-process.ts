import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SERVER = fileURLToPath(new URL('../fixtures/logging-upstream.js', import.meta.url));

export interface UpstreamProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** `METHOD id` of every request as it arrived (the x-test-id header), in order. */
  readonly seen: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A real upstream in its own process (so a test can SIGKILL it) that reports each request it receives. */
export async function spawnUpstream(): Promise<UpstreamProcess> {
  const child = spawn(process.execPath, [SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', () => reject(new Error('upstream exited at start')));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('LISTENING ')) resolve(Number(line.slice(10)));
      else if (line.startsWith('REQ ')) seen.push(line.slice(4));
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child, port, url: `http://127.0.0.1:${port}`, seen,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
