import { spawn } from 'node:child_process';
import type { LoadReport, ScalerPlugin } from '../../gateway/plugin-api/index.js';

type Command = string | string[];

interface ExecOptions {
  scale: Command;
  current: Command;
  cwd?: string;
  env: Record<string, string>;
  /** Kill a command still running after this (the loop's own call timeout also applies). */
  timeoutMs: number;
}

const PLACEHOLDER = /\{(service|replicas|current)\}/g;

function fill(text: string, values: Record<string, string>): string {
  return text.replace(PLACEHOLDER, (_m, name: string) => values[name] ?? '');
}

/** Output kept from a command, for error messages and the current count. */
const MAX_OUTPUT_BYTES = 64 * 1024;

/**
 * Runs one command: an argv array without a shell, or a string through /bin/sh -c. Placeholders {service},
 * {replicas}, {current} are filled in (service names are [A-Za-z0-9_.-] and counts integers, so nothing can inject
 * shell syntax); the same values are in the environment as GANTRY_SERVICE, GANTRY_REPLICAS, GANTRY_CURRENT, and the
 * decision as JSON on stdin. Resolves with stdout; rejects on a non-zero exit, a timeout or an abort (the command's
 * process group is killed).
 */
function run(command: Command, values: Record<string, string>, options: ExecOptions, stdin: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const [file, args, shell] = typeof command === 'string'
      ? ['/bin/sh', ['-c', fill(command, values)], true]
      : [command[0] as string, command.slice(1).map((a) => fill(a, values)), false];
    const env = { ...process.env, ...options.env, GANTRY_SERVICE: values.service ?? '', GANTRY_REPLICAS: values.replicas ?? '', GANTRY_CURRENT: values.current ?? '' };
    // Its own process group, so a timeout kills the shell and whatever it started (kubectl, curl, ...).
    const child = spawn(file, args, { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let done = false;
    const killGroup = () => {
      try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
    };
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err); else resolve(stdout);
    };
    const onAbort = () => { killGroup(); finish(new Error(`command aborted: ${shell ? args[1] : [file, ...args].join(' ')}`)); };
    const timer = setTimeout(() => { killGroup(); finish(new Error(`command timed out after ${options.timeoutMs} ms`)); }, options.timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) return onAbort();
    child.stdout.on('data', (c: Buffer) => { if (stdout.length < MAX_OUTPUT_BYTES) stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { if (stderr.length < MAX_OUTPUT_BYTES) stderr += c.toString(); });
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
    child.once('error', (err) => finish(new Error(`cannot run ${file}: ${err.message}`, { cause: err })));
    child.once('close', (code, sig) => {
      if (code === 0) return finish(null);
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      finish(new Error(`command exited with ${sig ?? `code ${code}`}${tail ? `: ${tail}` : ''}`));
    });
  });
}

const commandSchema = {
  oneOf: [
    { type: 'string', minLength: 1, description: 'Run through /bin/sh -c.' },
    { type: 'array', minItems: 1, items: { type: 'string' }, description: 'argv, no shell.' },
  ],
} as const;

/**
 * Scales through any command line: `kubectl scale deployment/{service} --replicas={replicas}`, a docker compose
 * call, an Ansible playbook. `current` must print the current replica count (an integer) on stdout.
 */
export const execScaler: ScalerPlugin<ExecOptions> = {
  kind: 'scaler',
  type: 'exec',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['scale', 'current'],
    properties: {
      scale: commandSchema,
      current: commandSchema,
      cwd: { type: 'string', minLength: 1 },
      env: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
      timeoutMs: { type: 'integer', minimum: 100, default: 5000 },
    },
  },
  check(options) {
    const problems: [string[], string][] = [];
    const text = (c: Command) => (typeof c === 'string' ? c : c.join(' '));
    if (!text(options.scale).includes('{replicas}')) problems.push([['scale'], 'must use {replicas} (the count to scale to)']);
    return problems;
  },
  create(options) {
    let current = new Map<string, number>();
    return {
      async currentReplicas(service, signal) {
        const out = (await run(options.current, { service }, options, '', signal)).trim();
        if (!/^\d+$/.test(out)) throw new Error(`the current command printed ${JSON.stringify(out.slice(0, 80))}, not a replica count`);
        const n = Number(out);
        current.set(service, n);
        return n;
      },
      async scale(service, desired, load: LoadReport, signal) {
        const values = { service, replicas: String(desired), current: String(current.get(service) ?? '') };
        const stdin = JSON.stringify({ service, desired, current: current.get(service) ?? null, load });
        await run(options.scale, values, options, stdin, signal);
        current.set(service, desired);
      },
      async close() {
        current = new Map();
      },
    };
  },
};
