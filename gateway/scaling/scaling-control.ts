import type { Logger } from 'pino';
import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import type { LoadRecorder } from '../load/load-recorder.js';
import type { Discovery } from '../plugin-api/discovery.js';
import type { ScalingDecisionRecord } from './decision-history.js';
import type { ScalingObserver, ServiceScalingStatus } from './scaling-loop.js';

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
