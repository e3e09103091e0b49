import type { ServiceTotals } from '../signals/load-recorder.js';

/**
 * What each gateway of a fleet publishes about once per scaling interval, under its own lease (so it disappears when
 * the gateway does): its own load per scaled service, as additive window sums, and the config it serves.
 */
export interface LoadReport {
  readonly instance: string;
  /** Epoch ms on the reporter's clock when the windows were read. */
  readonly at: number;
  readonly version: string;
  readonly config: { readonly hash: string; readonly generation: number };
  readonly services: Readonly<Record<string, ServiceTotals>>;
}

/** A report as read from etcd: null when it is not one (a stray key, another version's shape), never a throw. */
export function decodeLoadReport(value: string): LoadReport | null {
  try {
    const r = JSON.parse(value) as Partial<LoadReport>;
    if (typeof r.instance !== 'string' || typeof r.at !== 'number' || typeof r.config?.hash !== 'string') return null;
    if (r.services === null || typeof r.services !== 'object') return null;
    for (const t of Object.values(r.services)) {
      if (typeof t?.stable?.spanMs !== 'number' || typeof t.panic?.spanMs !== 'number' || !Array.isArray(t.stable.latency) || !Array.isArray(t.panic.latency)) return null;
    }
    return r as LoadReport;
  } catch {
    return null;
  }
}

/** Requests per second and mean in flight over a report's stable window: what /admin/fleet shows per gateway. */
export function reportedLoad(t: ServiceTotals): { rps: number; inFlight: number; waiting: number } {
  const spanS = Math.max(1, t.stable.spanMs) / 1000;
  return { rps: Math.round((t.stable.arrivals / spanS) * 100) / 100, inFlight: Math.round((t.stable.inFlightMs / Math.max(1, t.stable.spanMs)) * 100) / 100, waiting: t.waiting };
}
