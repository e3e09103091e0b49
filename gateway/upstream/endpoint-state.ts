import http from 'node:http';
import https from 'node:https';
import { PeakEwma } from '../balancing/peak-ewma.js';
import type { BreakerConfig } from '../config/gateway-config.js';
import { EndpointHealth } from '../resilience/endpoint-health.js';

/** Per-service settings every endpoint of the service shares. */
export interface EndpointSettings {
  readonly maxSockets: number;
  readonly idleTimeoutMs: number;
  readonly breaker: BreakerConfig;
}

/**
 * Everything the gateway knows about one endpoint of one service. It lives in the EndpointRegistry, keyed by
 * service + address, so a reload or a discovery update that keeps the endpoint keeps its sockets and counters.
 */
export class EndpointState {
  readonly key: string;
  readonly service: string;
  readonly address: string;
  /** Pre-parsed for http-proxy, so it never parses a URL per request. */
  readonly target: { readonly protocol: string; readonly host: string; readonly port: number };
  /** `host:port`, the Host header when a service sends the endpoint's own. */
  readonly hostHeader: string;
  readonly agent: http.Agent;
  weight: number;
  /** Requests sent and not yet finished. */
  inFlight = 0;
  /** Pools that list this endpoint; at 0 (and no request in flight) the registry closes its sockets. */
  refs = 0;
  /** When discovery first listed it (slow start). */
  readonly addedAt: number;
  readonly latency: PeakEwma;
  readonly health = new EndpointHealth();

  constructor(service: string, address: string, weight: number, settings: EndpointSettings, now = Date.now()) {
    const u = new URL(address);
    this.key = `${service}|${address}`;
    this.service = service;
    this.address = address;
    this.weight = weight;
    const port = Number(u.port);
    // URL keeps IPv6 brackets in hostname; the socket layer wants them off.
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    this.target = { protocol: u.protocol, host, port };
    this.hostHeader = u.host;
    const Agent = u.protocol === 'https:' ? https.Agent : http.Agent;
    // LIFO keeps the hottest sockets busy and lets the rest reach the idle timeout, which stays below the upstream's
    // keep-alive timeout so the gateway closes an idle socket before the upstream does (the keep-alive reset race).
    this.agent = new Agent({
      keepAlive: true, maxSockets: settings.maxSockets, maxFreeSockets: settings.maxSockets,
      timeout: settings.idleTimeoutMs, scheduling: 'lifo',
    });
    this.addedAt = now;
    this.latency = new PeakEwma(10_000, 0, now);
    this.health.configure(settings.breaker);
  }

  configure(settings: EndpointSettings): void {
    this.health.configure(settings.breaker);
    this.agent.maxSockets = settings.maxSockets;
    this.agent.maxFreeSockets = settings.maxSockets;
    (this.agent as http.Agent & { options: { timeout?: number } }).options.timeout = settings.idleTimeoutMs;
  }
}
