import type { ServiceLoadSnapshot } from '../signals/load-recorder.js';
import type { Endpoint } from '../plugin-api/discovery.js';
import type { MetricsSnapshot } from '../admin/cluster-metrics.js';
import type { TrafficAndHealthSnapshot } from '../admin/traffic-and-health.js';
import type { ReloadResult } from '../admin/config-metrics.js';
import type { ReloadOutcome } from '../runtime/reloader.js';
import type { ScalingDecisionRecord } from '../scaling/decision-history.js';
import type { ServiceScalingStatus } from '../scaling/scaling-control.js';
import type { RateLimitAsk } from './cluster-rate-limiter.js';
import type { FleetStatus } from '../fleet/fleet-status.js';
import type { HealthVerdict } from '../upstream/health-verdicts.js';

/** What each process counts for itself, summed over the workers when asked: for /metrics, or for the dashboard's views. */
export type WorkerPart =
  | { readonly what: 'metrics'; readonly snapshot: MetricsSnapshot }
  | { readonly what: 'traffic-and-health'; readonly snapshot: TrafficAndHealthSnapshot | null };

/** Primary → worker. */
export type ToWorker =
  /**
   * The answer to 'config-request': the routes file's text as the cluster serves it (generation 1 of the worker),
   * and the endpoints the primary's health checks hold out of rotation now.
   */
  | { readonly type: 'config'; readonly text: string; readonly unhealthy: readonly HealthVerdict[] }
  /** An active health check of the primary's changed its verdict on an endpoint: apply it as a local check's. */
  | { readonly type: 'health-verdict'; readonly verdict: HealthVerdict }
  /** Run `id` of a reload: prepare the file whose hash the primary validated (`commit` or `abort` follows). */
  | { readonly type: 'prepare'; readonly id: number; readonly hash: string }
  | { readonly type: 'commit'; readonly id: number }
  | { readonly type: 'abort'; readonly id: number }
  /**
   * How reload run `run` ended for the whole cluster, for every worker's reload metrics and admin API (generation:
   * 0), sent to every worker before any 'reload-answer' of that run.
   */
  | { readonly type: 'reload-result'; readonly run: number; readonly result: ReloadResult }
  /** The answer to this worker's 'reload-request' `id`: the run that read the file after the request came. */
  | { readonly type: 'reload-answer'; readonly id: number; readonly run: number; readonly result: ReloadResult }
  | { readonly type: 'shutdown' }
  /** Send this worker's numbers of kind `what` (a GET /metrics or a dashboard view reached one of the workers). */
  | { readonly type: 'collect'; readonly id: number; readonly what: WorkerPart['what'] }
  /** The answer to 'collect-request' `id`: every worker's numbers that came in time, the asker's included. */
  | { readonly type: 'collect-answer'; readonly id: number; readonly parts: readonly WorkerPart[] }
  /** SIGUSR2 reached the primary: reopen the log file (logrotate renamed it). */
  | { readonly type: 'reopen-log' }
  /** The ready endpoints of a scaler-fed pool (pool key), in full each time; null: the feed closed. */
  | { readonly type: 'scaler-endpoints'; readonly key: string; readonly endpoints: readonly Endpoint[] | null }
  /** A decision of the primary's scaling loop, for the worker's metrics and admin API. */
  | { readonly type: 'scaling-decision'; readonly record: ScalingDecisionRecord }
  /** Every evaluation: the replica counts, and the loop's status of that service. */
  | { readonly type: 'scaling-replicas'; readonly service: string; readonly desired: number; readonly current: number; readonly status: ServiceScalingStatus | undefined }
  /** The answer to 'rate-limit' `id`: per ask, allowed (0/1), remaining, resetMs, retryAfterMs. */
  | { readonly type: 'rate-limit-answer'; readonly id: number; readonly decisions: readonly number[] }
  /** In a fleet, every second: the fleet as the primary sees it, for the workers' /admin/fleet and gauges. */
  | { readonly type: 'fleet-status'; readonly status: FleetStatus; readonly leading: boolean };

/** Worker → primary. */
export type ToPrimary =
  /** A starting worker asks for the config the others serve (the file on disk may hold edits not yet reloaded). */
  | { readonly type: 'config-request' }
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'prepared'; readonly id: number; readonly result: ReloadOutcome['result']; readonly message?: string }
  | { readonly type: 'committed'; readonly id: number; readonly generation: number }
  /** GET /metrics or a dashboard view reached this worker: the primary gathers every worker's numbers. */
  | { readonly type: 'collect-request'; readonly id: number; readonly what: WorkerPart['what'] }
  | { readonly type: 'collected'; readonly id: number; readonly part: WorkerPart }
  /** POST /admin/reload reached this worker: the primary reloads the whole cluster, as for SIGHUP. */
  | { readonly type: 'reload-request'; readonly id: number }
  /**
   * The worker's load since its last shipment (taken `at` on the shared clock), the ready endpoints of its scaled
   * services, and the services whose held requests want an evaluation now.
   */
  | { readonly type: 'load'; readonly at: number; readonly services: readonly ServiceLoadSnapshot[]; readonly ready: readonly (readonly [string, number])[]; readonly wake: readonly string[] }
  /** A pool of this worker takes (or gives back) the endpoints of a scaler-fed service, by pool key. */
  | { readonly type: 'scaler-endpoints-watch'; readonly key: string }
  | { readonly type: 'scaler-endpoints-unwatch'; readonly key: string }
  /** Rate-limit requests of one event-loop turn against the primary's buckets (cluster-rate-limiter.ts). */
  | { readonly type: 'rate-limit'; readonly id: number; readonly asks: readonly RateLimitAsk[] };
