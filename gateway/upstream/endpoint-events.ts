import type { BreakerState } from '../resilience/circuit-breaker.js';
import type { EndpointState } from './endpoint-state.js';

/**
 * Changes of an endpoint's resilience state, for metrics and the admin board (admin/upstream-metrics.ts implements it).
 * Called on transitions only, never per request.
 */
export interface EndpointEvents {
  breakerState(endpoint: EndpointState, state: BreakerState): void;
  endpointHealth(endpoint: EndpointState, health: 'healthy' | 'unhealthy'): void;
  ejection(endpoint: EndpointState, ejected: boolean, reason?: string): void;
}

/** Per-service resilience counters the request path reports (admin/upstream-metrics.ts implements it). */
export interface ResilienceEvents {
  retry(service: string, reason: string): void;
  retryBudgetExhausted(service: string): void;
  bulkheadRejected(service: string): void;
}
