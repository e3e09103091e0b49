import type { Logger } from 'pino';
import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import type { LoadRecorder } from '../signals/load-recorder.js';
import type { Discovery } from '../plugin-api/discovery.js';
import type { ScalingDecisionRecord } from './decision-history.js';
import type { DecisionCause } from './scale-policy.js';

/** What the operability side listens to (admin/scaling-metrics.ts has both methods). */
export interface ScalingObserver {
  /** A decision worth keeping, as the history keeps it. */
  scalingDecision(record: ScalingDecisionRecord): void;
  /** Every evaluation, not only on a change. */
  replicas(service: string, desired: number, current: number): void;
}

/** Whether this gateway may call scalers (gateway/fleet/: the fleet's elected leader, within its lease). */
export interface Leadership {
  /** Checked before every scaler call: false as soon as the lease may have expired, before another can be elected. */
  holds(): boolean;
}

export interface ServiceScalingStatus {
  readonly service: string;
  readonly scaler: string;
  readonly current: number | null;
  readonly desired: number | null;
  readonly ready: number;
  readonly min: number;
  readonly max: number;
  readonly panic: boolean;
  readonly lastCause: DecisionCause | null;
  readonly lastReason: string | null;
  readonly consecutiveFailures: number;
  readonly lastError: string | null;
  /** Epoch ms before which no call is made after failures (0 when not backing off). */
  readonly backoffUntil: number;
}

/** What the admin side reads of autoscaling (`Gateway.scaling`). */
export interface ScalingView {
  status(): ServiceScalingStatus[];
  /** The latest decisions, oldest first: of one service, or of all (merged by time). */
  recentDecisions(service?: string): readonly ScalingDecisionRecord[];
}

/**
 * What a gateway process needs of autoscaling: its own ScalingLoop, or in a cluster worker the stand-in for the
 * primary's loop (gateway/cluster/worker-scaling.ts), which ships the load and takes endpoints and decisions back.
 */
export interface ScalingControl extends ScalingView {
  /** For the PoolManager: a Discovery over the scaler's own endpoints, for `discovery: { type: scaler }`. */
  scalerEndpoints(s: ServiceConfig): Discovery | undefined;
  /** A request is waiting for a first endpoint: act now rather than at the next tick. */
  wake(service: string): void;
  /** Follows the serving config (at start and after each applied reload). */
  sync(config: GatewayConfig): void;
  start(): void;
  close(): Promise<void>;
}

/** What createGateway hands whichever ScalingControl it runs. */
export interface ScalingDeps {
  readonly load: LoadRecorder;
  readonly log: Logger;
  /** Ready endpoints of a service in the serving config. */
  readonly readyEndpoints: (service: string) => number;
  readonly observer: ScalingObserver;
}

/** Replaces the gateway's own scaling loop (cluster workers: the primary scales). */
export interface ScalingProvider {
  /** The clock the load recorder runs on: in a cluster, the shared clock the primary sums by. */
  readonly clock: () => number;
  create(deps: ScalingDeps): ScalingControl;
}
