import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { HealthCheckConfig } from '../config/gateway-config.js';
import type { EndpointState } from '../upstream/endpoint-state.js';

/** One GET of the health path: true for an expected status within the timeout. */
export function probeEndpoint(e: EndpointState, cfg: HealthCheckConfig, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const request = e.target.protocol === 'https:' ? https.request : http.request;
    const req = request({
      host: e.target.host, port: e.target.port, path: cfg.path, method: 'GET', agent: false, signal, ...e.tls,
      headers: { host: e.hostHeader, 'user-agent': 'gantry-health-check', connection: 'close' },
    }, (res) => {
      res.resume();
      resolve(cfg.expectStatus.includes(res.statusCode ?? 0));
    });
    req.setTimeout(cfg.timeoutMs, () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/**
 * Active health checks for one service's endpoints: every intervalMs (±10 % jitter, so many gateways do not probe
 * in step), one GET per endpoint. unhealthyThreshold failures in a row take an endpoint out; healthyThreshold
 * successes in a row bring it back by itself. Endpoints start healthy, so a restart never blocks traffic.
 */
export class HealthChecker {
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly endpoints: () => readonly EndpointState[],
    readonly cfg: HealthCheckConfig,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  start(): void {
    this.#schedule();
  }

  stop(): void {
    this.#abort.abort();
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#abort.signal.aborted) return;
    const delay = this.cfg.intervalMs * (0.9 + 0.2 * this.random());
    this.#timer = setTimeout(() => { void this.runOnce().finally(() => this.#schedule()); }, delay);
    this.#timer.unref();
  }

  /** Probes every endpoint once and applies the thresholds. */
  async runOnce(): Promise<void> {
    const signal = this.#abort.signal;
    await Promise.all(this.endpoints().map(async (e) => {
      const ok = await probeEndpoint(e, this.cfg, signal);
      if (signal.aborted) return;
      this.record(e, ok);
    }));
  }

  record(e: EndpointState, ok: boolean): void {
    const h = e.health;
    if (ok === h.activeHealthy) { h.activeStreak = 0; return; }
    h.activeStreak++;
    const needed = ok ? this.cfg.healthyThreshold : this.cfg.unhealthyThreshold;
    if (h.activeStreak < needed) return;
    h.setActiveHealthy(ok);
    this.log.warn({ endpoint: e.address, healthy: ok, event: ok ? 'endpoint-healthy' : 'endpoint-unhealthy' },
      ok ? 'health check passes again: endpoint back in rotation' : 'health check failing: endpoint out of rotation');
  }
}
