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

export function readText(path: string): string | Error {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    return err as Error;
  }
}

/** A certificate and its key as read: the PEM text and the parsed leaf. */
export interface KeyPair {
  readonly certPem: string;
  readonly keyPem: string;
  readonly x509: X509Certificate;
}

/** A problem with one file of a pair. */
export interface PairProblem {
  readonly field: 'cert' | 'key';
  readonly message: string;
}

/**
 * Reads a certificate and its key and checks what any use of the pair needs: both files readable and PEM, the key
 * unencrypted and the certificate's, the certificate valid now. `pair` is set when nothing stops its use (an
 * expired certificate is reported and still returned, so the caller can list every problem).
 */
export function readKeyPair(certPath: string, keyPath: string, nowMs = Date.now()): { pair: KeyPair | null; problems: PairProblem[] } {
  const problems: PairProblem[] = [];
  const problem = (field: PairProblem['field'], message: string) => { problems.push({ field, message }); };
  const certPem = readText(certPath);
  const keyPem = readText(keyPath);
  if (certPem instanceof Error) problem('cert', `cannot read ${certPath}: ${certPem.message}`);
  if (keyPem instanceof Error) problem('key', `cannot read ${keyPath}: ${keyPem.message}`);
  if (certPem instanceof Error || keyPem instanceof Error) return { pair: null, problems };
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    problem('cert', `${certPath} is not a PEM certificate: ${(err as Error).message}`);
    return { pair: null, problems };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    const encrypted = (err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE';
    problem('key', `${keyPath} is not ${encrypted ? 'an unencrypted' : 'a PEM'} private key${encrypted ? ' (passphrases are not supported)' : `: ${(err as Error).message}`}`);
    return { pair: null, problems };
  }
  if (!x509.checkPrivateKey(key)) {
    problem('key', `${keyPath} is not the key of ${certPath} (it does not match the certificate's public key)`);
    return { pair: null, problems };
  }
  if (x509.validFromDate.getTime() > nowMs) problem('cert', `${certPath} is not valid yet: from ${x509.validFromDate.toISOString()}`);
  if (x509.validToDate.getTime() < nowMs) problem('cert', `${certPath} expired on ${x509.validToDate.toISOString()}`);
  return { pair: { certPem, keyPem, x509 }, problems };
}

/**
 * Reads and checks the certificates of `tls:` in file order: each pair as readKeyPair checks it, OpenSSL willing to
 * serve the pair (it refuses keys that are too small), every certificate after the first naming some host, and no
 * host named by two certificates (which one a client got would depend on the order). Reads synchronously: a few small
 * files, at a config load or a rotation, never on the request path.
 */
export function readCertificates(files: readonly CertificateFiles[], minVersion: TlsVersion, nowMs = Date.now()): ReadCertificates {
  const certificates: TlsCertificate[] = [];
  const problems: CertificateProblem[] = [];
  const owners = new Map<string, number>();
  files.forEach((f, index) => {
    const problem = (field: CertificateProblem['field'], message: string) => { problems.push({ index, field, message }); };
    const read = readKeyPair(f.cert, f.key, nowMs);
    for (const p of read.problems) problem(p.field, p.message);
    if (read.pair === null) return;
    const { certPem, keyPem, x509 } = read.pair;
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
