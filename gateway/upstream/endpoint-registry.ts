import type { Endpoint } from '../plugin-api/discovery.js';
import type { EndpointEvents } from './endpoint-events.js';
import { EndpointState, type EndpointSettings } from './endpoint-state.js';

/** The one place per-endpoint state lives across reloads and discovery updates (caddy's hosts.go does the same). */
export class EndpointRegistry {
  readonly #states = new Map<string, EndpointState>();

  constructor(private readonly events?: EndpointEvents) {}

  acquire(service: string, endpoint: Endpoint, settings: EndpointSettings): EndpointState {
    const key = `${service}|${endpoint.address}`;
    let state = this.#states.get(key);
    if (!state) {
      state = new EndpointState(service, endpoint.address, endpoint.weight, settings);
      const events = this.events;
      if (events) {
        const e = state;
        state.health.onChange = (c) => {
          if (c.breaker !== undefined) events.breakerState(e, c.breaker);
          if (c.healthy !== undefined) events.endpointHealth(e, c.healthy ? 'healthy' : 'unhealthy');
          if (c.ejected !== undefined) events.ejection(e, c.ejected, 'consecutive-5xx');
        };
      }
      this.#states.set(key, state);
    } else {
      state.weight = endpoint.weight;
    }
    state.refs++;
    return state;
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
    if (this.#states.get(state.key) === state) this.#states.delete(state.key);
    state.destroy();
  }

  get size(): number {
    return this.#states.size;
  }

  /** Closes every socket: shutdown only. */
  destroyAll(): void {
    for (const s of this.#states.values()) s.destroy();
    this.#states.clear();
  }
}
