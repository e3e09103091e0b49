import type { ScalerPlugin } from '../../gateway/plugin-api/index.js';
import { ProcessSupervisor, type SupervisorOptions } from './process-supervisor.js';

interface ProcessOptions {
  command: string[];
  cwd?: string;
  env: Record<string, string>;
  host: string;
  portEnv: string;
  healthPath: string;
  healthIntervalMs: number;
  startTimeoutMs: number;
  stopGraceMs: number;
  restartBackoff: { initialMs: number; maxMs: number };
  stableAfterMs: number;
  output: 'log' | 'inherit' | 'ignore';
}

/**
 * The embedded default scaler for one machine: the gateway runs the service's instances itself, each a child process
 * on a free loopback port (in the environment as PORT), and lists the ready ones as the service's endpoints
 * (`discovery: { type: scaler }`). CPU and memory per instance come from /proc.
 */
export const processScaler: ScalerPlugin<ProcessOptions> = {
  kind: 'scaler',
  type: 'process',
  providesEndpoints: true,
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['command'],
    properties: {
      command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'argv, no shell; "node" runs the gateway\'s own Node.' },
      cwd: { type: 'string', minLength: 1 },
      env: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
      host: { enum: ['127.0.0.1', '::1'], default: '127.0.0.1', description: 'Loopback only: the instances are reached through the gateway.' },
      portEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', default: 'PORT' },
      healthPath: { type: 'string', pattern: '^/', default: '/healthz', description: 'Ready once this answers 2xx or 3xx.' },
      healthIntervalMs: { type: 'integer', minimum: 10, default: 100 },
      startTimeoutMs: { type: 'integer', minimum: 100, default: 30000 },
      stopGraceMs: { type: 'integer', minimum: 0, default: 10000, description: 'SIGTERM, then SIGKILL after this.' },
      restartBackoff: {
        type: 'object', additionalProperties: false, default: {},
        properties: { initialMs: { type: 'integer', minimum: 1, default: 500 }, maxMs: { type: 'integer', minimum: 1, default: 30000 } },
      },
      stableAfterMs: { type: 'integer', minimum: 0, default: 30000, description: 'An instance up this long resets the restart backoff.' },
      output: { enum: ['log', 'inherit', 'ignore'], default: 'log', description: 'Instance stdout/stderr: into the gateway log, straight through, or dropped.' },
    },
  },
  check(options) {
    const problems: [string[], string][] = [];
    if (options.restartBackoff.initialMs > options.restartBackoff.maxMs) problems.push([['restartBackoff', 'initialMs'], 'must not exceed restartBackoff.maxMs']);
    if (options.portEnv in options.env) problems.push([['env', options.portEnv], `${options.portEnv} is set by the scaler for each instance`]);
    return problems;
  },
  create(options, ctx) {
    const supervisors = new Map<string, ProcessSupervisor>();
    const supervisor = (service: string): ProcessSupervisor => {
      let s = supervisors.get(service);
      if (!s) {
        const o: SupervisorOptions = { ...options, service };
        s = new ProcessSupervisor(o, ctx.log);
        supervisors.set(service, s);
      }
      return s;
    };
    return {
      async currentReplicas(service) {
        return supervisor(service).target;
      },
      async scale(service, desired) {
        supervisor(service).scale(desired);
      },
      async resources(service) {
        return supervisor(service).resources();
      },
      endpoints(service, signal) {
        return supervisor(service).watch(signal);
      },
      async close() {
        await Promise.all([...supervisors.values()].map((s) => s.close()));
      },
    };
  },
};
