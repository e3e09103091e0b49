import { LATENCY_LAYOUT, rebinPairs, sameLayout, type BinLayout } from '../signals/latency-bins.js';
import type { ServiceTotals } from '../signals/load-recorder.js';

/** The bins of reports that name none: the gateways before the dashboard and the scaler shared one histogram. */
const FIRST_LAYOUT: BinLayout = { baseMs: 0.25, perDoubling: 4, count: 78 };

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
  /** The bins the services' latency pairs count in (signals/latency-bins.ts). */
  readonly latencyBins?: BinLayout;
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
    const layout = r.latencyBins ?? FIRST_LAYOUT;
    if (sameLayout(layout, LATENCY_LAYOUT)) return r as LoadReport;
    // A gateway of another version counts latency in other bins: read them in ours, or its p99 is misread.
    const services: Record<string, ServiceTotals> = {};
    for (const [name, t] of Object.entries(r.services)) {
      services[name] = { ...t, stable: { ...t.stable, latency: rebinPairs(t.stable.latency, layout) }, panic: { ...t.panic, latency: rebinPairs(t.panic.latency, layout) } };
    }
    return { ...(r as LoadReport), services, latencyBins: LATENCY_LAYOUT };
  } catch {
    return null;
  }
}

/** Requests per second and mean in flight over a report's stable window: what /admin/fleet shows per gateway. */
export function reportedLoad(t: ServiceTotals): { rps: number; inFlight: number; waiting: number } {
  const spanS = Math.max(1, t.stable.spanMs) / 1000;
  return { rps: Math.round((t.stable.arrivals / spanS) * 100) / 100, inFlight: Math.round((t.stable.inFlightMs / Math.max(1, t.stable.spanMs)) * 100) / 100, waiting: t.waiting };
}
