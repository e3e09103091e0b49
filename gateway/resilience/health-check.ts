import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { HealthCheckConfig } from '../config/gateway-config.js';
import type { EndpointState } from '../upstream/endpoint-state.js';
import type { HealthVerdicts } from '../upstream/health-verdicts.js';

/** One GET of the health path: null for an expected status within the timeout, else why not. */
export function probeEndpoint(e: EndpointState, cfg: HealthCheckConfig, signal: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    const request = e.target.protocol === 'https:' ? https.request : http.request;
    const req = request({
      host: e.target.host, port: e.target.port, path: cfg.path, method: 'GET', agent: false, signal, ...e.tls,
      headers: { host: e.hostHeader, 'user-agent': 'gantry-health-check', connection: 'close' },
    }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(cfg.expectStatus.includes(status) ? null : `status ${status}`);
    });
    req.setTimeout(cfg.timeoutMs, () => req.destroy(new Error(`no answer within ${cfg.timeoutMs} ms`)));
    req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

/**
 * Active health checks for one service's endpoints: every intervalMs (±10 % jitter, so many gateways do not probe
 * in step), one GET per endpoint. unhealthyThreshold failures in a row take an endpoint out; healthyThreshold
 * successes in a row bring it back by itself. Endpoints start healthy, so a restart never blocks traffic.
 * A verdict goes to `verdicts`, which every endpoint of the address follows (and, in a cluster primary, every worker).
 */
export class HealthChecker {
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly endpoints: () => readonly EndpointState[],
    readonly cfg: HealthCheckConfig,
    private readonly verdicts: HealthVerdicts,
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
      const failure = await probeEndpoint(e, this.cfg, signal);
      if (signal.aborted) return;
      this.record(e, failure);
    }));
  }

  /** One check's result: `failure` null for a pass, else why it failed. */
  record(e: EndpointState, failure: string | null): void {
    const h = e.health;
    const ok = failure === null;
    if (ok === h.activeHealthy) { h.activeStreak = 0; return; }
    h.activeStreak++;
    const needed = ok ? this.cfg.healthyThreshold : this.cfg.unhealthyThreshold;
    if (h.activeStreak < needed) return;
    const reason = failure ?? `${needed} checks passed`;
    h.activeStreak = 0;
    this.verdicts.set({ service: e.service, address: e.address, healthy: ok, reason });
    this.log.warn({ endpoint: e.address, healthy: ok, reason, event: ok ? 'endpoint-healthy' : 'endpoint-unhealthy' },
      ok ? 'health check passes again: endpoint back in rotation' : 'health check failing: endpoint out of rotation');
  }
}
