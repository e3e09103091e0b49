import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { TlsCertificate, TlsVersion } from '../config/gateway-config.js';

export interface CertificateFiles {
  /** Absolute paths. */
  readonly cert: string;
  readonly key: string;
}

/** A problem with `certificates[index]`, on its `cert` or `key` entry. */
export interface CertificateProblem {
  readonly index: number;
  readonly field: 'cert' | 'key';
  readonly message: string;
}

export interface ReadCertificates {
  /** Complete only when `problems` is empty. */
  readonly certificates: TlsCertificate[];
  readonly problems: CertificateProblem[];
}

// Node writes subjectAltName as `DNS:a.example, DNS:*.b.example, IP Address:10.0.0.1`, quoting (JSON) a value that
// holds a comma or a quote.
const DNS_NAME = /(?:^|, )DNS:("(?:[^"\\]|\\.)*"|[^,]*)/g;

/** The DNS subjectAltNames that SNI can choose by, lower-case: exact names and `*.` wildcards over one label. */
export function dnsNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const m of (cert.subjectAltName ?? '').matchAll(DNS_NAME)) {
    const raw = m[1] as string;
    let name = (raw.startsWith('"') ? JSON.parse(raw) as string : raw).toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    // A partial wildcard (`a*.example`) or one deeper than the first label is not something SNI matching honours.
    if (name && (!name.includes('*') || (name.startsWith('*.') && !name.slice(2).includes('*')))) names.push(name);
  }
  return names;
}

function readText(path: string): string | Error {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    return err as Error;
  }
}

/**
 * Reads and checks the certificates of `tls:` in file order: each file readable and PEM, the key the certificate's,
 * the certificate valid now, OpenSSL willing to serve the pair (it refuses keys that are too small), every certificate
 * after the first naming some host, and no host named by two certificates (which one a client got would depend on the
 * order). Reads synchronously: a few small files, at a config load or a rotation, never on the request path.
 */
export function readCertificates(files: readonly CertificateFiles[], minVersion: TlsVersion, nowMs = Date.now()): ReadCertificates {
  const certificates: TlsCertificate[] = [];
  const problems: CertificateProblem[] = [];
  const owners = new Map<string, number>();
  files.forEach((f, index) => {
    const problem = (field: CertificateProblem['field'], message: string) => { problems.push({ index, field, message }); };
    const certPem = readText(f.cert);
    const keyPem = readText(f.key);
    if (certPem instanceof Error) problem('cert', `cannot read ${f.cert}: ${certPem.message}`);
    if (keyPem instanceof Error) problem('key', `cannot read ${f.key}: ${keyPem.message}`);
    if (certPem instanceof Error || keyPem instanceof Error) return;
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(certPem);
    } catch (err) {
      problem('cert', `${f.cert} is not a PEM certificate: ${(err as Error).message}`);
      return;
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      const encrypted = (err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE';
      problem('key', `${f.key} is not ${encrypted ? 'an unencrypted' : 'a PEM'} private key${encrypted ? ' (passphrases are not supported)' : `: ${(err as Error).message}`}`);
      return;
    }
    if (!x509.checkPrivateKey(key)) {
      problem('key', `${f.key} is not the key of ${f.cert} (it does not match the certificate's public key)`);
      return;
    }
    if (x509.validFromDate.getTime() > nowMs) problem('cert', `${f.cert} is not valid yet: from ${x509.validFromDate.toISOString()}`);
    if (x509.validToDate.getTime() < nowMs) problem('cert', `${f.cert} expired on ${x509.validToDate.toISOString()}`);
    const names = dnsNames(x509);
    if (index > 0 && names.length === 0) {
      problem('cert', `${f.cert} names no host (no DNS subjectAltName): only the first certificate, the default, can do without`);
    }
    for (const name of names) {
      const owner = owners.get(name);
      if (owner !== undefined) problem('cert', `${name} is also a name of certificates[${owner}]: one name, one certificate`);
      else owners.set(name, index);
    }
    try {
      createSecureContext({ cert: certPem, key: keyPem, minVersion });
    } catch (err) {
      problem('cert', `OpenSSL refuses ${f.cert} with its key: ${(err as Error).message}`);
    }
    certificates.push({
      cert: f.cert, key: f.key, certPem, keyPem, names,
      fingerprint: x509.fingerprint256, validTo: x509.validToDate.toISOString(),
    });
  });
  return { certificates, problems };
}
