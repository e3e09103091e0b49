import type { Lease } from 'etcd3';

/**
 * How long an etcd lease is surely still alive, as this process can know it: from the time a keep-alive was sent
 * (not when its answer came) plus the TTL etcd granted. etcd expires the lease no earlier than that, so a leader that
 * stops acting at this deadline has stopped before etcd can elect another. etcd3's own `lost` event comes only after
 * twice the TTL, too late for that.
 */
export class LeaseValidity {
  #validUntil = -Infinity;
  /** Send times of keep-alives not yet answered, oldest first. */
  #pending: number[] = [];

  /** `requestedAt`: when the lease was asked for (before its grant was sent). */
  constructor(lease: Lease, ttlS: number, requestedAt: number, private readonly now: () => number) {
    lease.grant().then(() => { this.#validUntil = Math.max(this.#validUntil, requestedAt + ttlS * 1000); }, () => {});
    lease.on('keepaliveFired', () => this.#pending.push(this.now()));
    lease.on('keepaliveSucceeded', (res) => {
      const sentAt = this.#pending.shift();
      if (sentAt !== undefined) this.#validUntil = Math.max(this.#validUntil, sentAt + Number(res.TTL) * 1000);
    });
    lease.on('keepaliveFailed', () => { this.#pending = []; });
    lease.on('lost', () => { this.#validUntil = -Infinity; });
  }

  valid(): boolean {
    return this.now() < this.#validUntil;
  }

  /** Milliseconds left (negative once past). */
  remainingMs(): number {
    return this.#validUntil - this.now();
  }
}
