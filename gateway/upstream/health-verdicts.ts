/** What an active health check concluded about one endpoint, once its threshold was passed. */
export interface HealthVerdict {
  readonly service: string;
  readonly address: string;
  readonly healthy: boolean;
  /** Why: the last failed check (`status 503`, `timeout`, a socket error), or that the checks pass again. */
  readonly reason: string;
}

/**
 * The endpoints active health checks took out of rotation, by service and address, and where every verdict goes,
 * whoever checked: this process's own HealthChecker, or (a cluster worker) the primary, which alone probes for its
 * host (gateway/cluster/primary-health-checks.ts). Kept by address rather than on the endpoint's state, so an
 * endpoint a worker's discovery lists only after the verdict, or lists again, starts out of rotation too.
 */
export class HealthVerdicts {
  readonly #unhealthy = new Map<string, Map<string, string>>();
  readonly #listeners = new Set<(v: HealthVerdict) => void>();

  /** Records `v` and tells every listener (the endpoint registry, the primary's broadcast) when it changes anything. */
  set(v: HealthVerdict): void {
    let byAddress = this.#unhealthy.get(v.service);
    if (v.healthy) {
      if (!byAddress?.delete(v.address)) return;
      if (byAddress.size === 0) this.#unhealthy.delete(v.service);
    } else {
      if (byAddress?.get(v.address) === v.reason) return;
      if (!byAddress) this.#unhealthy.set(v.service, byAddress = new Map());
      byAddress.set(v.address, v.reason);
    }
    for (const listener of this.#listeners) listener(v);
  }

  /** Why `address` of `service` is out of rotation; undefined while no check took it out. */
  unhealthyReason(service: string, address: string): string | undefined {
    return this.#unhealthy.get(service)?.get(address);
  }

  /** Every endpoint of `service` is back in rotation (its checks stopped). */
  clear(service: string, reason: string): void {
    for (const address of [...this.#unhealthy.get(service)?.keys() ?? []]) this.set({ service, address, healthy: true, reason });
  }

  /** The endpoints out of rotation now: what a starting worker is given. */
  unhealthy(): HealthVerdict[] {
    return [...this.#unhealthy].flatMap(([service, byAddress]) => [...byAddress].map(([address, reason]) => ({ service, address, healthy: false, reason })));
  }

  onChange(listener: (v: HealthVerdict) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }
}
