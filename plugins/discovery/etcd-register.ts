import type { Lease } from 'etcd3';
import type { Logger } from 'pino';
import { aborted, backoffStepMs, canonicalAddress, sleep, type Backoff, type Endpoint } from '../../gateway/plugin-api/index.js';
import { createEtcdClient, loadEtcd3, type EtcdConnection } from '../../gateway/plugin-api/index.js';
import { DEFAULT_PREFIX, encodeEndpointValue } from './etcd.js';

export interface RegistrationOptions extends EtcdConnection {
  /** The service's prefix, as the gateway's etcd discovery watches it; default `/gantry/services/<service>/`. */
  readonly prefix?: string;
  readonly service: string;
  readonly endpoint: Endpoint;
  /** The key's last segment; default the endpoint's host:port. */
  readonly id?: string;
  /** Lease TTL: how long the key outlives this process when it dies without revoking. */
  readonly ttlS: number;
  /** Re-grant backoff after a lost lease (full jitter). */
  readonly backoff?: Backoff;
}

export function registrationKey(o: Pick<RegistrationOptions, 'prefix' | 'service' | 'endpoint' | 'id'>): string {
  const prefix = o.prefix ?? `${DEFAULT_PREFIX}${o.service}/`;
  return `${prefix}${o.id ?? canonicalAddress(o.endpoint.address).replace(/^https?:\/\//, '')}`;
}

/**
 * Keeps one endpoint registered in etcd until `signal` aborts: the key is put under a lease that etcd3 keeps alive
 * (every ttl/3). If this process dies, the keep-alives stop and etcd deletes the key when the lease expires; on a
 * clean stop (abort) the lease is revoked, so the key goes at once. A lease lost while etcd was unreachable is
 * granted again, and the key put again, with jittered backoff. Resolves after the revoke.
 */
export async function keepRegistered(o: RegistrationOptions, signal: AbortSignal, log: Logger): Promise<void> {
  const key = registrationKey(o);
  const value = encodeEndpointValue({ ...o.endpoint, address: canonicalAddress(o.endpoint.address) });
  const backoff = o.backoff ?? { initialMs: 200, maxMs: 10_000 };
  const client = createEtcdClient(o, await loadEtcd3());
  let lease: Lease | null = null;
  let registered = false;
  let failures = 0;
  try {
    while (!signal.aborted) {
      lease = client.lease(o.ttlS);
      const current = lease;
      const lost = new Promise<Error>((resolve) => current.on('lost', resolve));
      try {
        await current.put(key).value(value).exec();
        failures = 0;
        if (!registered) log.info({ event: 'registered', key, ttlS: o.ttlS, leaseId: await current.grant() }, `registered ${key}`);
        registered = true;
        const why = await Promise.race([lost, aborted(signal).then(() => null)]);
        if (!why) break;
        log.warn({ event: 'lease-lost', key, err: why.message }, 'etcd lease lost; registering again');
      } catch (err) {
        if (signal.aborted) break;
        if (registered || failures === 0) log.warn({ event: 'register-failed', key, err: (err as Error).message }, 'cannot register in etcd; retrying');
      }
      registered = false;
      // Stops its keep-alives; if the lease still exists (the put failed after the grant), it should not linger either.
      void current.revoke().catch(() => {});
      lease = null;
      failures++;
      await sleep(Math.random() * backoffStepMs(failures, backoff), signal);
    }
  } finally {
    if (lease) {
      // Revoking deletes the key now instead of a TTL later; bounded, since etcd may be the thing that is gone.
      await Promise.race([lease.revoke().catch(() => {}), new Promise((r) => setTimeout(r, o.requestTimeoutMs).unref())]);
      log.info({ event: 'deregistered', key }, `deregistered ${key}`);
    }
    client.close();
  }
}
