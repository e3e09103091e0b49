import type { Campaign, Etcd3, IKeyValue, Lease, Namespace, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import type { FleetConfig } from '../config/gateway-config.js';
import { createEtcdClient, loadEtcd3 } from '../plugin-api/index.js';
import { LATENCY_LAYOUT } from '../signals/latency-bins.js';
import type { LoadSource } from '../signals/load-recorder.js';
import type { FleetReports, RemoteLoad } from './fleet-load.js';
import { fleetStatus, type FleetStatus } from './fleet-status.js';
import { LeaseValidity } from './lease-validity.js';
import { decodeLoadReport, type LoadReport } from './load-report.js';
import { decodeLeaderState, type LeaderState } from './leader-state.js';

/** Keys under the fleet's prefix (`/gantry/fleet/NAME/`). */
export const FLEET_KEYS = {
  election: 'election/leader/',
  reports: 'reports/',
  scaling: 'scaling/',
} as const;

export function fleetPrefix(name: string): string {
  return `/gantry/fleet/${name}/`;
}

/** What the scaling side hears from the fleet. */
export interface FleetListener {
  /** This gateway was elected, with the previous leader's published state per service: carry it over before acting. */
  elected(states: ReadonlyMap<string, LeaderState>): void;
  /** A request is held on another gateway (its report shows it waiting): evaluate the service now. */
  remoteWake(service: string): void;
  /** The leader published its state of a service (followers show its decisions and counts). */
  leaderState(service: string, state: LeaderState): void;
}

export interface FleetMemberOptions {
  readonly config: FleetConfig;
  readonly log: Logger;
  /** This gateway's own load (with --workers, the workers' sum): what it reports. */
  readonly own: LoadSource;
  readonly version: string;
  /** The serving config's generation. */
  readonly generation: () => number;
  readonly listener: FleetListener;
}

/** One etcd client and what hangs on it; a new session starts with a new client (gRPC's reconnect backoff grows to minutes). */
interface Session {
  readonly client: Etcd3;
  readonly ns: Namespace;
  ended: boolean;
  watcher?: Watcher;
  reportLease?: Lease;
  campaign?: Campaign;
  validity?: LeaseValidity;
  /** The campaign's key and lease, for writes only the leader may make. */
  fence?: { key: string; lease: string };
  elected: boolean;
  /** Ends the session's watch (and with it the session). */
  end?: () => void;
}

interface ScaledService {
  readonly stableWindowMs: number;
  readonly panicWindowMs: number;
}

/**
 * This gateway's membership in a fleet, all of it over etcd (docs/fleet.md):
 * - every interval it puts its load report under its own lease (`reports/INSTANCE`), so a gateway that stops is
 *   out of the sum when its lease expires, and once, since each gateway has one key;
 * - it campaigns in the fleet's election (the etcd3 client's Election); the elected gateway leads while its lease
 *   surely holds (LeaseValidity), which the scaling loop checks before every scaler call;
 * - it watches the fleet's prefix: the other gateways' reports (summed by FleetLoad), the election's keys (who leads)
 *   and the leader's published state per service (`scaling/SERVICE`: policy history, status, recent decisions).
 * Nothing on the request path waits on etcd: an unreachable etcd only leaves the reports incomplete and, past the
 * lease, the fleet without a leader until it is back.
 */
export class FleetMember implements FleetReports {
  readonly #o: FleetMemberOptions;
  readonly #prefix: string;
  readonly #reports = new Map<string, { report: LoadReport; receivedAt: number }>();
  readonly #candidates = new Map<string, { createRevision: bigint; instance: string }>();
  readonly #states = new Map<string, LeaderState>();
  #services = new Map<string, ScaledService>();
  #hash = '';
  #intervalMs = 1000;
  #session: Session | null = null;
  #synced = false;
  /** Since when the watch is down (null: up), and whether that was logged. */
  #unsyncedSince: number | null = null;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #reportQueued = false;
  #lastReport: LoadReport | null = null;
  #closed = false;
  /** Leases of ended sessions whose revoke failed: revoked by the next session, so a new leader need not wait out their TTL. */
  readonly #staleLeases = new Set<string>();

  constructor(o: FleetMemberOptions) {
    this.#o = o;
    this.#prefix = fleetPrefix(o.config.name);
  }

  get instance(): string {
    return this.#o.config.instance;
  }

  /** Follows the serving config: which services are reported (with their windows), the config hash, the interval. */
  sync(services: ReadonlyMap<string, ScaledService & { readonly intervalMs: number }>, hash: string): void {
    this.#services = new Map(services);
    this.#hash = hash;
    const intervals = [...services.values()].map((s) => s.intervalMs);
    const intervalMs = intervals.length ? Math.min(...intervals) : 1000;
    if (intervalMs !== this.#intervalMs && this.#timer) {
      this.#intervalMs = intervalMs;
      this.#startTimer();
    }
    this.#intervalMs = intervalMs;
  }

  /** Connects in the background (nothing waits for etcd) and starts reporting. */
  start(): void {
    this.#startTimer();
    void this.#run();
  }

  #startTimer(): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.#report(), this.#intervalMs);
    this.#timer.unref();
  }

  /** True while this gateway is the fleet's leader and its lease surely holds: the fence before every scaler call. */
  holds(): boolean {
    const s = this.#session;
    return s !== null && s.elected && !s.ended && (s.validity?.valid() ?? false);
  }

  complete(): boolean {
    return this.#synced;
  }

  *remote(service: string): Iterable<RemoteLoad> {
    const now = Date.now();
    for (const [instance, { report, receivedAt }] of this.#reports) {
      if (instance === this.instance) continue;
      const totals = report.services[service];
      if (totals) yield { totals, ageMs: Math.max(0, now - receivedAt) };
    }
  }

  /** A request is held here: report now (coalesced per turn), so the leader sees it waiting and scales. */
  reportNow(): void {
    if (this.#reportQueued) return;
    this.#reportQueued = true;
    setImmediate(() => { this.#reportQueued = false; this.#report(); });
  }

  /** The leader's latest published state of each service (for followers' admin API). */
  leaderStates(): ReadonlyMap<string, LeaderState> {
    return this.#states;
  }

  /** Publishes the leader's state of a service; only while leading (a transaction on its election key). */
  publish(service: string, state: LeaderState): void {
    const s = this.#session;
    if (!s?.fence || !this.holds()) return;
    const { key, lease } = s.fence;
    s.client.if(key, 'Lease', '==', lease).then(s.ns.put(FLEET_KEYS.scaling + service).value(JSON.stringify(state))).commit()
      .catch((err: Error) => this.#o.log.debug({ event: 'fleet-publish-failed', service, err: err.message }, 'could not publish the scaling state'));
  }

  status(): FleetStatus {
    const reports = new Map([...this.#reports].map(([k, v]) => [k, { report: v.report, ageMs: Date.now() - v.receivedAt }]));
    if (this.#lastReport) reports.set(this.instance, { report: this.#lastReport, ageMs: Date.now() - this.#lastReport.at });
    return fleetStatus({
      name: this.#o.config.name, self: this.instance, leader: this.leader(), reports, connected: this.#synced,
      leaseRemainingMs: this.holds() ? Math.round(this.#session?.validity?.remainingMs() ?? 0) : null,
    });
  }

  /** The leading gateway's instance, as the election's keys say (the oldest candidate leads); null when none. */
  leader(): string | null {
    let best: { createRevision: bigint; instance: string } | null = null;
    for (const c of this.#candidates.values()) if (best === null || c.createRevision < best.createRevision) best = c;
    return best?.instance ?? null;
  }

  #report(): void {
    const s = this.#session;
    const services: Record<string, LoadReport['services'][string]> = {};
    for (const [name, w] of this.#services) services[name] = this.#o.own.totals(name, w.stableWindowMs, w.panicWindowMs);
    const report: LoadReport = { instance: this.instance, at: Date.now(), version: this.#o.version, config: { hash: this.#hash, generation: this.#o.generation() }, services, latencyBins: LATENCY_LAYOUT };
    this.#lastReport = report;
    if (!s?.reportLease || s.ended) return;
    s.reportLease.put(FLEET_KEYS.reports + this.instance).value(JSON.stringify(report)).exec()
      .catch((err: Error) => this.#o.log.debug({ event: 'fleet-report-failed', err: err.message }, 'could not publish the load report'));
  }

  // ---- the session: connect, watch, report lease, campaign; all of it again on a fresh client after a failure ----

  async #run(): Promise<void> {
    const lib = await loadEtcd3();
    while (!this.#closed) {
      const { endpoints, ...rest } = this.#o.config.etcd;
      const client = createEtcdClient({ hosts: [...endpoints], ...rest } as Parameters<typeof createEtcdClient>[0], lib);
      const session: Session = { client, ns: client.namespace(this.#prefix), ended: false, elected: false };
      this.#session = session;
      try {
        await this.#revokeStale(session);
        const done = this.#watch(session, await this.#list(session));
        this.#newReportLease(session);
        this.#campaign(session);
        this.#report();
        await done;
      } catch (err) {
        this.#lost(`${(err as Error).message}`);
      }
      await this.#end(session);
      if (this.#closed) return;
      // Jittered, up to 1 s: a restarted etcd is seen within about a second.
      await new Promise((r) => setTimeout(r, Math.round(Math.random() * Math.min(1000, 100 * 2 ** Math.min(this.#failures++, 4)))).unref());
    }
  }

  async #revokeStale(s: Session): Promise<void> {
    for (const id of [...this.#staleLeases]) {
      await s.client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
      this.#staleLeases.delete(id);
    }
  }

  async #list(s: Session): Promise<string> {
    const listed = await s.ns.getAll().exec();
    this.#reports.clear();
    this.#candidates.clear();
    for (const kv of listed.kvs) this.#apply(kv, 'put');
    return listed.header.revision;
  }

  /** Resolves when the session should end: the watch failed for longer than the lease, or the campaign failed. */
  #watch(s: Session, listedAt: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let listed: string | null = listedAt;
      const open = async () => {
        if (s.ended) return resolve();
        try {
          const revision = listed ?? await this.#list(s);
          listed = null;
          const watcher = s.ns.watch().prefix('').startRevision(String(BigInt(revision) + 1n)).watcher();
          s.watcher = watcher;
          watcher.on('put', (kv) => this.#apply(kv, 'put'));
          watcher.on('delete', (kv) => this.#apply(kv, 'delete'));
          const failed = (err: Error) => {
            watcher.removeAllListeners();
            watcher.on('error', () => {});
            void watcher.cancel().catch(() => {});
            retry(err);
          };
          watcher.on('disconnected', failed);
          watcher.on('error', failed);
          watcher.on('connected', () => this.#synced || this.#found());
        } catch (err) {
          retry(err as Error);
        }
      };
      const retry = (err: Error) => {
        this.#lost(err.message);
        // Past the lease the session's leadership and report are gone anyway: start afresh on a new client.
        if (this.#unsyncedSince !== null && Date.now() - this.#unsyncedSince > this.#o.config.leaseTtlS * 1000) return reject(err);
        setTimeout(() => void open(), 250).unref();
      };
      s.end = () => resolve();
      void open();
    });
  }

  #found(): void {
    if (this.#unsyncedSince !== null) this.#o.log.info({ event: 'fleet-etcd-reachable', fleet: this.#o.config.name }, 'etcd is reachable again; the fleet\'s reports are current');
    this.#synced = true;
    this.#unsyncedSince = null;
    this.#failures = 0;
  }

  #lost(reason: string): void {
    this.#synced = false;
    if (this.#unsyncedSince === null) {
      this.#unsyncedSince = Date.now();
      this.#o.log.warn({ event: 'fleet-etcd-unreachable', fleet: this.#o.config.name, err: reason }, 'etcd is unreachable: serving goes on; no scale-down on missing reports');
    }
  }

  #apply(kv: IKeyValue, type: 'put' | 'delete'): void {
    const key = kv.key.toString();
    if (key.startsWith(FLEET_KEYS.reports)) {
      const instance = key.slice(FLEET_KEYS.reports.length);
      const report = type === 'put' ? decodeLoadReport(kv.value.toString()) : null;
      if (report === null) { this.#reports.delete(instance); return; }
      this.#reports.set(instance, { report, receivedAt: Date.now() });
      if (instance !== this.instance && this.holds()) {
        for (const [service, t] of Object.entries(report.services)) if (t.waiting > 0) this.#o.listener.remoteWake(service);
      }
    } else if (key.startsWith(FLEET_KEYS.election)) {
      if (type === 'delete') this.#candidates.delete(key);
      else this.#candidates.set(key, { createRevision: BigInt(kv.create_revision), instance: kv.value.toString() });
    } else if (key.startsWith(FLEET_KEYS.scaling) && type === 'put') {
      const service = key.slice(FLEET_KEYS.scaling.length);
      const state = decodeLeaderState(kv.value.toString());
      if (state === null) return;
      this.#states.set(service, state);
      this.#o.listener.leaderState(service, state);
    }
  }

  #newReportLease(s: Session): void {
    if (s.ended) return;
    const lease = s.ns.lease(this.#o.config.leaseTtlS);
    s.reportLease = lease;
    lease.on('lost', () => { if (!s.ended && s.reportLease === lease) this.#newReportLease(s); });
  }

  #campaign(s: Session): void {
    const requestedAt = Date.now();
    const campaign = s.ns.election('leader', this.#o.config.leaseTtlS).campaign(this.instance);
    s.campaign = campaign;
    // The Campaign keeps its lease private; its keep-alives tell how long the leadership surely holds.
    const lease = (campaign as unknown as { lease: Lease }).lease;
    s.validity = new LeaseValidity(lease, this.#o.config.leaseTtlS, requestedAt, Date.now);
    campaign.on('elected', () => void this.#elected(s, campaign, lease));
    campaign.on('error', (err: Error) => {
      if (s.ended) return;
      if (s.elected) this.#o.log.warn({ event: 'fleet-leadership-lost', fleet: this.#o.config.name, instance: this.instance, err: err.message }, 'no longer the fleet\'s scaling leader');
      s.elected = false;
      s.end?.();
    });
  }

  async #elected(s: Session, campaign: Campaign, lease: Lease): Promise<void> {
    try {
      const [key, id] = await Promise.all([campaign.getCampaignKey(), lease.grant()]);
      s.fence = { key, lease: id };
      // The previous leader's state, read now rather than from the watch, which may lag.
      const scaling = await s.ns.getAll().prefix(FLEET_KEYS.scaling).exec().catch(() => null);
      for (const kv of scaling?.kvs ?? []) {
        const state = decodeLeaderState(kv.value.toString());
        if (state) this.#states.set(kv.key.toString().slice(FLEET_KEYS.scaling.length), state);
      }
    } catch (err) {
      this.#o.log.warn({ event: 'fleet-elected-failed', err: (err as Error).message }, 'elected, but the fleet\'s state could not be read');
    }
    if (s.ended) return;
    this.#o.listener.elected(this.#states);
    s.elected = true;
    this.#o.log.info({ event: 'fleet-leader', fleet: this.#o.config.name, instance: this.instance }, 'this gateway is the fleet\'s scaling leader');
  }

  async #end(s: Session): Promise<void> {
    if (s.ended) return;
    s.ended = true;
    s.elected = false;
    this.#synced = false;
    s.end?.();
    s.watcher?.removeAllListeners();
    s.watcher?.on('error', () => {});
    void s.watcher?.cancel().catch(() => {});
    // Revoking the leases hands leadership over at once and takes this report out; when etcd cannot be reached,
    // the next session tries again.
    for (const lease of [s.campaign ? (s.campaign as unknown as { lease: Lease }).lease : undefined, s.reportLease]) {
      if (!lease) continue;
      const id = await lease.grant().catch(() => null);
      lease.release();
      if (id === null) continue;
      const revoked = await s.client.leaseClient.leaseRevoke({ ID: id }).then(() => true, () => false);
      if (!revoked) this.#staleLeases.add(id);
    }
    s.client.close();
  }

  /** Leaves the fleet: leadership passes at once, this gateway's report goes. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#session) await Promise.race([this.#end(this.#session), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}
