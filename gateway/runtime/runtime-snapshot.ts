import type { BlockList } from 'node:net';
import type { GatewayConfig } from '../config/gateway-config.js';
import type { Policy } from '../policies/policy.js';
import type { ServiceRuntime } from '../resilience/service-policy.js';
import type { Router } from '../routing/router.js';

/** Everything a request needs, built from one config. Immutable: a reload builds a new one and swaps it in. */
export interface RuntimeSnapshot {
  readonly generation: number;
  readonly config: GatewayConfig;
  readonly loadedAt: number;
  readonly router: Router;
  readonly services: ReadonlyMap<string, ServiceRuntime>;
  /** Peers whose X-Forwarded-For is trusted; null when none are. */
  readonly trustedProxies: BlockList | null;
  /** The config's named policies as built for it (the routes' chains hold their steps); closed when it retires. */
  readonly policies: ReadonlyMap<string, Policy>;
}
