import type { BlockList } from 'node:net';
import type { GatewayConfig, ServiceConfig } from '../config/gateway-config.js';
import type { ServicePolicy } from '../resilience/build-service-policy.js';
import type { EndpointSelector } from '../resilience/endpoint-selector.js';
import type { Router } from '../routing/router.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';

export interface ServiceRuntime {
  readonly config: ServiceConfig;
  readonly pool: UpstreamPool;
  readonly selector: EndpointSelector;
  readonly policy: ServicePolicy;
}

/** Everything a request needs, built from one config. Immutable: a reload builds a new one and swaps it in. */
export interface RuntimeSnapshot {
  readonly generation: number;
  readonly config: GatewayConfig;
  readonly loadedAt: number;
  readonly router: Router;
  readonly services: ReadonlyMap<string, ServiceRuntime>;
  /** Peers whose X-Forwarded-For is trusted; null when none are. */
  readonly trustedProxies: BlockList | null;
}
