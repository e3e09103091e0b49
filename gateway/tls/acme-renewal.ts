import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AcmeConfig, TlsConfig, TlsVersion } from '../config/gateway-config.js';
import { OrderLock } from './acme-lock.js';
import { AcmeOrderError, orderCertificate, type IssuedCertificate } from './acme-order.js';
import { AcmeStorage, readStoredCertificate, type StoredCertificate } from './acme-storage.js';

/** An order that takes longer is aborted and counts as failed (acme-lock.ts: a lock is stale after longer still). */
export const ORDER_TIMEOUT_MS = 10 * 60 * 1000;
/** While another process holds the order lock, the stored certificate is looked at again this often. */
export const LOCK_WAIT_MS = 5_000;
/** The longest setTimeout; a renewal further off is slept towards in steps. */
const MAX_SLEEP_MS = 2 ** 31 - 1;

/**
 * When a certificate valid from `notBeforeMs` to `notAfterMs` is renewed: at two thirds of its lifetime (as
 * Let's Encrypt advises, 60 days into 90), less a jitter of up to a thirtieth of it (3 days of 90), so that gateways
 * that got their certificates together do not all renew at one moment. `random` in [0, 1).
 */
export function renewalTime(notBeforeMs: number, notAfterMs: number, random: number): number {
  const lifetimeMs = notAfterMs - notBeforeMs;
  return notBeforeMs + Math.floor((lifetimeMs * 2) / 3 - (lifetimeMs / 30) * random);
}

/** The wait after the `failures`-th failed order in a row: initialMs doubling up to maxMs, the upper half jittered. */
export function retryDelay(failures: number, retry: AcmeConfig['retry'], random: number): number {
  const capped = Math.min(retry.maxMs, retry.initialMs * 2 ** Math.min(failures - 1, 30));
  return Math.floor(capped / 2 + (capped / 2) * random);
}

export interface AcmeRenewalOptions {
  readonly acme: AcmeConfig;
  readonly minVersion: TlsVersion;
  readonly log: Logger;
  /** A certificate was stored (the process's own TLS listener, if any, serves it at once). */
  readonly issued?: () => void;
  readonly random?: () => number;
  readonly now?: () => number;
  /** One order; acme-order.ts by default. */
  readonly order?: (acme: AcmeConfig, storage: AcmeStorage, signal: AbortSignal) => Promise<IssuedCertificate>;
}

/**
 * Keeps the certificate of `tls.acme` stored and current: orders one when the storage has none that serves (none,
 * expired, other names), and again at its renewal time; a failed order is logged with the CA's problem document and
 * retried with backoff. One process orders at a time per storage directory (acme-lock.ts); the others find the
 * certificate stored afterwards. The listeners serve what is stored (tls-listener.ts), so the work here never touches
 * a request. `stop` aborts the order under way and every wait.
 */
export class AcmeRenewal {
  readonly storage: AcmeStorage;
  readonly #options: AcmeRenewalOptions;
  readonly #lock: OrderLock;
  readonly #abort = new AbortController();
  #run: Promise<void> | undefined;

  constructor(options: AcmeRenewalOptions) {
    this.#options = options;
    this.storage = new AcmeStorage(options.acme);
    this.#lock = new OrderLock(this.storage.lockFile, options.now);
  }

  start(): void {
    this.#run ??= this.#loop(this.#abort.signal).catch((err: unknown) => {
      this.#options.log.error({ event: 'acme-stopped', err }, 'ACME renewal stopped on an unexpected error');
    });
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#run;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const { acme, log, minVersion } = this.#options;
    const random = this.#options.random ?? Math.random;
    const now = this.#options.now ?? Date.now;
    const fields = { domains: acme.domains, directory: acme.directory };
    let failures = 0;
    let scheduled = -1;
    let lockHolder = '';
    // One jitter per certificate: its renewal time stays put however often it is computed.
    const jitters = new Map<string, number>();
    const renewalOf = (c: StoredCertificate) => {
      if (!c.certificate) return 0;
      const fingerprint = c.certificate.fingerprint;
      if (!jitters.has(fingerprint)) { jitters.clear(); jitters.set(fingerprint, random()); }
      return renewalTime(c.notBefore, c.notAfter, jitters.get(fingerprint) as number);
    };
    while (!signal.aborted) {
      const stored = readStoredCertificate(this.storage, acme.domains, minVersion, now());
      const renewAt = renewalOf(stored);
      if (renewAt > now()) {
        if (renewAt !== scheduled) {
          scheduled = renewAt;
          log.info({ event: 'acme-renewal-scheduled', ...fields, validTo: stored.certificate?.validTo, renewAt: new Date(renewAt).toISOString() }, 'ACME certificate stored; renewal scheduled');
        }
        await pause(Math.min(renewAt - now(), MAX_SLEEP_MS), signal);
        continue;
      }
      const holder = await this.#lock.acquire();
      if (holder !== null) {
        const key = `${holder.host}:${holder.pid}:${holder.at}`;
        if (key !== lockHolder) log.info({ event: 'acme-order-locked', ...fields, holder }, 'another process is ordering this certificate; waiting for it');
        lockHolder = key;
        await pause(LOCK_WAIT_MS, signal);
        continue;
      }
      let retryInMs = 0;
      try {
        // The lock's last holder may have stored a certificate while this process waited.
        const again = readStoredCertificate(this.storage, acme.domains, minVersion, now());
        if (renewalOf(again) > now()) continue;
        const reason = again.certificate ? 'renewal' : again.reason;
        log.info({ event: 'acme-order-started', ...fields, reason }, stored.certificate ? 'renewing the ACME certificate' : 'ordering an ACME certificate');
        const issued = await this.#order(signal);
        await this.storage.saveCertificate(issued.certPem, issued.keyPem);
        failures = 0;
        const saved = readStoredCertificate(this.storage, acme.domains, minVersion, now());
        log.info({ event: 'acme-certificate-issued', ...fields, proved: issued.proved, validTo: saved.certificate?.validTo, fingerprint: saved.certificate?.fingerprint },
          'ACME certificate issued and stored');
        this.#options.issued?.();
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        retryInMs = retryDelay(failures, acme.retry, random());
        log.error({
          event: 'acme-order-failed', ...fields, failures, retryInMs, err: (err as Error).message,
          problem: err instanceof AcmeOrderError ? err.problem : null,
        }, `ACME order failed; retrying in ${Math.round(retryInMs / 1000)} s`);
      } finally {
        await this.#lock.release();
      }
      if (retryInMs > 0) await pause(retryInMs, signal);
    }
  }

  /** One order, bounded by ORDER_TIMEOUT_MS; given up at once on stop (requests still on their way finish unheard). */
  async #order(signal: AbortSignal): Promise<IssuedCertificate> {
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(ORDER_TIMEOUT_MS)]);
    const order = (this.#options.order ?? orderCertificate)(this.#options.acme, this.storage, bounded);
    order.catch(() => {});
    return Promise.race([order, new Promise<never>((_, reject) => {
      bounded.addEventListener('abort', () => reject(bounded.reason as Error), { once: true });
    })]);
  }
}

/** Waits `ms` or until `signal` aborts, without keeping the process alive. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal, ref: false }).catch(() => {});
}

/**
 * The renewal of the serving config's `tls.acme`: started with the first config, replaced when a reload changes the
 * block (the old one's order, if any, aborted), stopped without one. `create` makes each.
 */
export class ServingAcmeRenewal {
  #renewal: AcmeRenewal | null = null;
  #key = 'null';

  constructor(private readonly create: (acme: AcmeConfig, minVersion: TlsVersion) => AcmeRenewal) {}

  follow(tls: TlsConfig | null): void {
    const acme = tls?.acme ?? null;
    const key = JSON.stringify(acme === null ? null : { acme, minVersion: tls?.minVersion });
    if (key === this.#key) return;
    this.#key = key;
    void this.#renewal?.stop();
    this.#renewal = acme === null ? null : this.create(acme, (tls as TlsConfig).minVersion);
    this.#renewal?.start();
  }

  async stop(): Promise<void> {
    this.#key = 'null';
    const renewal = this.#renewal;
    this.#renewal = null;
    await renewal?.stop();
  }
}
