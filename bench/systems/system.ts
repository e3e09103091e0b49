import type { Child, ProcessGroup } from '../processes.js';
import type { Scenario } from '../scenarios/scenario.js';

/**
 * One system the benchmark measures: the upstream itself (direct, the limit), Gantry, or a peer proxy (an anchor).
 * Every system is started in front of the same upstream, and all of them run side by side while the rounds
 * alternate between them.
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

export const NO_NOTES: FinishNotes = { notes: [], warnings: [] };
