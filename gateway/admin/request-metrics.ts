import type { TLSSocket } from 'node:tls';
import { Counter, type Registry } from 'prom-client';
import type { GatewayConfig } from '../config/gateway-config.js';
import type { ErrorCode } from '../errors.js';
import type { Exchange } from '../proxy/exchange.js';
import type { GatewayErrorWindow } from './gateway-error-window.js';
import { NO_ROUTE } from './label-values.js';
import { RouteSeries } from './request-series.js';
import type { TrafficStats } from './traffic-window.js';

/**
 * The request path's metrics: per route and service, counts by status class, a latency histogram and body bytes, as
 * plain numbers formatted when scraped (request-series.ts), and the errors the gateway answered itself.
 */
export class RequestMetrics {
  /** Route name → its series; a route that changed service gets a new series under the same name. */
  readonly #byRoute = new Map<string, RouteSeries>();
  /** The series of the configured routes (and of requests still finishing on an older config), by route and service. */
  readonly #allSeries = new Map<string, RouteSeries>();
  readonly #unmatched = new RouteSeries(NO_ROUTE, NO_ROUTE, null);
  readonly #errors: Counter<'service' | 'code'>;
  /** Requests by protocol, indexed as PROTOCOLS; plain numbers on the request path, handed to prom-client when scraped. */
  readonly #byProtocol = PROTOCOLS.map(() => 0);

  constructor(registry: Registry, private readonly traffic: TrafficStats, private readonly errorWindow: GatewayErrorWindow) {
    this.#allSeries.set(`${NO_ROUTE}\n${NO_ROUTE}`, this.#unmatched);
    this.#errors = new Counter({ name: 'gantry_errors_total', help: 'Answers the gateway made itself (docs/errors.md), by service and error code.', labelNames: ['service', 'code'], registers: [registry] });
    const byProtocol = this.#byProtocol;
    const reported = PROTOCOLS.map(() => 0);
    new Counter({
      name: 'gantry_requests_by_protocol_total', help: 'Requests answered, by HTTP version and whether they came over TLS.',
      labelNames: ['protocol', 'tls'], registers: [registry],
      collect() {
        for (let i = 0; i < PROTOCOLS.length; i++) {
          if (byProtocol[i]! > reported[i]!) this.inc(PROTOCOLS[i]!, byProtocol[i]! - reported[i]!);
          reported[i] = byProtocol[i]!;
        }
      },
    });
  }

  /** Once per finished exchange (HandlerContext.observe). A Map lookup and a few array writes. */
  requestFinished(ex: Exchange): void {
    const route = ex.route;
    let s = this.#unmatched;
    if (route !== undefined) {
      const found = this.#byRoute.get(route.name);
      s = found !== undefined && found.service === route.service ? found : this.#seriesFor(route.name, route.service);
    }
    s.record(ex.status, ex.durationMs(), ex.bytes);
    this.#byProtocol[protocolIndex(ex)]!++;
    if (ex.errorCode !== undefined) this.#error(s.service, ex.errorCode);
  }

  /** An error the server answered on the raw socket: no request, route or service existed (RequestHandlers). */
  answeredOnSocket(code: ErrorCode): void {
    this.#error(NO_ROUTE, code);
  }

  #error(service: string, code: ErrorCode): void {
    this.#errors.inc({ service, code });
    this.errorWindow.record(code);
  }

  #seriesFor(route: string, service: string): RouteSeries {
    const key = `${route}\n${service}`;
    let s = this.#allSeries.get(key);
    if (!s) {
      s = new RouteSeries(route, service, this.traffic.window(service));
      this.#allSeries.set(key, s);
    }
    this.#byRoute.set(route, s);
    return s;
  }

  /**
   * Drops the series of routes the config no longer has. A route's series is created by its first request, as
   * Traefik does: pre-creating zero series for 10 000 routes made every scrape 15 MB and the swap of a reload 7-21 ms
   * longer (bench:reload).
   */
  configLoaded(config: GatewayConfig): void {
    // Bounded by the config, not by its history; a request still in flight on the old generation re-creates its
    // series, pruned again by the next reload.
    // A split route has a series per side.
    const keep = new Set(config.routes.flatMap((r) => (r.split ?? [r]).map((side) => `${r.name}\n${side.service}`)));
    for (const [key, s] of this.#allSeries) {
      if (s !== this.#unmatched && !keep.has(`${s.route}\n${s.service}`)) {
        this.#allSeries.delete(key);
        if (this.#byRoute.get(s.route) === s) this.#byRoute.delete(s.route);
      }
    }
  }

  series(): RouteSeries[] {
    return [...this.#allSeries.values()];
  }
}

/** The label sets of gantry_requests_by_protocol_total; HTTP/2 is only offered on the TLS listener (ALPN h2). */
const PROTOCOLS = [
  { protocol: 'HTTP/1.0', tls: 'false' }, { protocol: 'HTTP/1.1', tls: 'false' },
  { protocol: 'HTTP/1.0', tls: 'true' }, { protocol: 'HTTP/1.1', tls: 'true' },
  { protocol: 'HTTP/2', tls: 'true' },
] as const;

function protocolIndex(ex: Exchange): number {
  if (ex.http2) return 4;
  return ((ex.req.socket as TLSSocket | null)?.encrypted === true ? 2 : 0) + (ex.req.httpVersionMinor === 0 ? 0 : 1);
}
