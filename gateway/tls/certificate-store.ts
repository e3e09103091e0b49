import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsCertificate, TlsVersion } from '../config/gateway-config.js';

/**
 * TLS 1.3's suites, then TLS 1.2's forward-secret AEAD suites (Mozilla's "intermediate" list without DHE, which needs
 * DH parameters of its own): no CBC, no RSA key exchange. With honorCipherOrder the server's order wins.
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** What every context of the listener is made with, besides its certificate. */
export function contextOptions(minVersion: TlsVersion): SecureContextOptions {
  return { minVersion, ciphers: CIPHERS, honorCipherOrder: true };
}

/** One config's certificates as contexts, looked up by name. */
interface CertificateSet {
  readonly certificates: readonly TlsCertificate[];
  readonly minVersion: TlsVersion;
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** `*.example.com` under `example.com`. */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
  readonly fallback: SecureContext;
}

/**
 * The listener's certificates, one SecureContext each, chosen by the name a client sends (SNI): an exact DNS
 * subjectAltName, then a `*.` wildcard over the name's first label, then the first certificate. A replacement is
 * built whole, then swapped in one assignment: a handshake picks its context when its ClientHello arrives
 * (`sniCallback`), so handshakes in flight finish on the old one and the next ones get the new one.
 */
export class CertificateStore {
  #set: CertificateSet;

  constructor(certificates: readonly TlsCertificate[], minVersion: TlsVersion) {
    this.#set = buildSet(certificates, minVersion);
  }

  /** The certificates served now (the PEM text that was read, its names, fingerprint and expiry). */
  get certificates(): readonly TlsCertificate[] {
    return this.#set.certificates;
  }

  /** Options of the listener's own context: what a client without SNI gets (no certificate: its handshake fails). */
  defaultOptions(): SecureContextOptions {
    const first = this.#set.certificates[0];
    return first ? { ...contextOptions(this.#set.minVersion), cert: first.certPem, key: first.keyPem } : contextOptions(this.#set.minVersion);
  }

  /** tls.Server's SNICallback. */
  readonly sniCallback = (servername: string, callback: (err: Error | null, context?: SecureContext) => void): void => {
    callback(null, this.contextFor(servername));
  };

  contextFor(servername: string): SecureContext {
    const set = this.#set;
    let name = servername.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const exact = set.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return (dot > 0 ? set.wildcard.get(name.slice(dot + 1)) : undefined) ?? set.fallback;
  }

  /** True when `certificates` and `minVersion` are what is served now (nothing to rebuild). */
  serves(certificates: readonly TlsCertificate[], minVersion: TlsVersion): boolean {
    const now = this.#set;
    return now.minVersion === minVersion && now.certificates.length === certificates.length
      && now.certificates.every((c, i) => c.certPem === certificates[i]?.certPem && c.keyPem === certificates[i]?.keyPem);
  }

  /** Builds contexts for `certificates` (checked by read-certificates.ts) and serves them from the next handshake. */
  replace(certificates: readonly TlsCertificate[], minVersion: TlsVersion): void {
    this.#set = buildSet(certificates, minVersion);
  }
}

/** With no certificate (`tls.acme` before its first is issued) every handshake fails: there is nothing to serve. */
function buildSet(certificates: readonly TlsCertificate[], minVersion: TlsVersion): CertificateSet {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const options = contextOptions(minVersion);
  const contexts = certificates.map((c) => createSecureContext({ ...options, cert: c.certPem, key: c.keyPem }));
  certificates.forEach((c, i) => {
    for (const name of c.names) {
      // A name two certificates share is refused at load; the first would win.
      if (name.startsWith('*.')) { if (!wildcard.has(name.slice(2))) wildcard.set(name.slice(2), contexts[i] as SecureContext); }
      else if (!exact.has(name)) exact.set(name, contexts[i] as SecureContext);
    }
  });
  return { certificates, minVersion, exact, wildcard, fallback: contexts[0] ?? createSecureContext(options) };
}
