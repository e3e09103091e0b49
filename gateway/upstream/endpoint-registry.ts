import { jsonEqual } from '../config/json-equal.js';
import type { Endpoint } from '../plugin-api/discovery.js';
import type { EndpointEvents } from './endpoint-events.js';
import { EndpointState, type EndpointSettings } from './endpoint-state.js';
import { HealthVerdicts, type HealthVerdict } from './health-verdicts.js';

/**
 * The one place per-endpoint state lives across reloads and discovery updates (caddy's hosts.go does the same).
 *
 * Every endpoint of a service the serving config has runs on that config's settings (`configure`, called when a
 * config is committed): a pool built for a config still being prepared shares these endpoints, so it must not
 * change them.
 */
export class EndpointRegistry {
  /** service → address → state. */
  readonly #states = new Map<string, Map<string, EndpointState>>();
  /** The serving config's settings of each of its services. */
  readonly #serving = new Map<string, EndpointSettings>();
  #size = 0;
  /** The active health checks' verdicts, which every endpoint of the address follows (health-verdicts.ts). */
  readonly verdicts: HealthVerdicts;
  /**
   * Whether this process's own checks give the verdicts: then an endpoint that is gone takes its verdict with it.
   * Verdicts given from outside (a cluster worker's, from the primary) are the giver's to withdraw.
   */
  readonly #ownsVerdicts: boolean;

  constructor(private readonly events?: EndpointEvents, verdicts?: HealthVerdicts) {
    this.#ownsVerdicts = verdicts === undefined;
    this.verdicts = verdicts ?? new HealthVerdicts();
    this.verdicts.onChange((v) => this.#applyVerdict(v));
  }

  #applyVerdict(v: HealthVerdict): void {
    const state = this.#states.get(v.service)?.get(v.address);
    if (state && state.health.activeHealthy !== v.healthy) state.health.setActiveHealthy(v.healthy);
  }

  /**
   * The state of `endpoint`, created when new (weight from `endpoint`). An existing state is returned as it is: its
   * weight belongs to the pools listing it (UpstreamPool.serve). `settings` apply only to a service nothing serves yet.
   */
  acquire(service: string, endpoint: Endpoint, settings: EndpointSettings): EndpointState {
    let states = this.#states.get(service);
    if (!states) this.#states.set(service, states = new Map());
    let state = states.get(endpoint.address);
    if (!state) {
      state = new EndpointState(service, endpoint.address, endpoint.weight, this.#serving.get(service) ?? settings);
      const events = this.events;
      if (events) {
        const e = state;
        state.health.onChange = (c) => {
          if (c.breaker !== undefined) events.breakerState(e, c.breaker);
          if (c.healthy !== undefined) events.endpointHealth(e, c.healthy ? 'healthy' : 'unhealthy');
          if (c.ejected !== undefined) events.ejection(e, c.ejected, 'consecutive-5xx');
        };
      }
      states.set(endpoint.address, state);
      this.#size++;
      if (this.verdicts.unhealthyReason(service, endpoint.address) !== undefined) state.health.setActiveHealthy(false);
    }
    state.refs++;
    return state;
  }

  /**
   * `service` is served with `settings` from now on (null: no longer served): every endpoint of it, whichever pool
   * lists it, takes them. Called when a config is committed, never while one is prepared.
   */
  configure(service: string, settings: EndpointSettings | null): void {
    if (settings === null) { this.#serving.delete(service); return; }
    const before = this.#serving.get(service);
    this.#serving.set(service, settings);
    if (before !== undefined && jsonEqual(before, settings)) return;
    for (const state of this.#states.get(service)?.values() ?? []) state.configure(settings);
  }

  /** The endpoints of `service` that some pool lists or a request still uses. */
  endpointsOf(service: string): Iterable<EndpointState> {
    return this.#states.get(service)?.values() ?? [];
  }

  release(state: EndpointState): void {
    state.refs--;
    this.#collect(state);
  }

  /** Called when a request on `state` finishes: an endpoint dropped by discovery closes once it is idle. */
  requestDone(state: EndpointState): void {
    state.inFlight--;
    if (state.refs === 0) this.#collect(state);
  }

  #collect(state: EndpointState): void {
    if (state.refs > 0 || state.inFlight > 0) return;
    const states = this.#states.get(state.service);
    if (states?.get(state.address) === state) {
      states.delete(state.address);
      this.#size--;
      if (states.size === 0) this.#states.delete(state.service);
      if (this.#ownsVerdicts) this.verdicts.set({ service: state.service, address: state.address, healthy: true, reason: 'no longer listed' });
    }
    state.destroy();
  }

  get size(): number {
    return this.#size;
  }

  /** Closes every socket: shutdown only. */
  destroyAll(): void {
    for (const states of this.#states.values()) for (const s of states.values()) s.destroy();
    this.#states.clear();
    this.#size = 0;
  }
}
