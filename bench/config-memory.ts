import { GatewayMetrics } from '../gateway/admin/metrics.js';
import { parseRoutes } from '../gateway/config/load-routes-file.js';
import type { RuntimeSnapshot } from '../gateway/runtime/runtime-snapshot.js';
import { Router } from '../gateway/routing/router.js';
import { createBuiltinRegistry } from '../plugins/index.js';

/** Heap a routes file keeps alive once loaded, by part, in bytes (after full garbage collections). */
export interface RetainedMemory {
  /** The frozen GatewayConfig. */
  readonly configBytes: number;
  /** The compiled routing table. */
  readonly routerBytes: number;
  /** The per-route request series GatewayMetrics keeps once every route has had a request (they start with it). */
  readonly metricsBytes: number;
}

/**
 * Measured in this process, where garbage can be collected on demand (node --expose-gc; null without it). The RSS of
 * a running Gantry also holds garbage not yet collected and memory the allocator keeps, so it reads higher.
 */
export async function retainedMemory(yaml: string): Promise<RetainedMemory | null> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  // Sweeping after a collection finishes on helper threads: heapUsed read at once can still count garbage (seen:
  // a negative figure for the next part). A few collections with pauses between settle it.
  const heap = async () => {
    for (let i = 0; i < 4; i++) { gc(); await new Promise((resolve) => setTimeout(resolve, 50)); }
    return process.memoryUsage().heapUsed;
  };
  const metrics = new GatewayMetrics({ current: () => undefined, version: 'bench' });
  const h0 = await heap();
  const config = parseRoutes(yaml, 'routes.yaml', createBuiltinRegistry());
  const h1 = await heap();
  const router = new Router(config.routes);
  const h2 = await heap();
  metrics.configLoaded({ config, generation: 1, loadedAt: Date.now(), router } as unknown as RuntimeSnapshot);
  for (const r of config.routes) metrics.requestFinished({ route: r, status: 200, bytes: 100, errorCode: undefined, durationMs: () => 1 } as never);
  const h3 = await heap();
  return { configBytes: h1 - h0, routerBytes: h2 - h1, metricsBytes: h3 - h2 };
}
