import { X509Certificate } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AcmeConfig, TlsCertificate, TlsVersion } from '../config/gateway-config.js';
import { readCertificates } from './read-certificates.js';

/**
 * Where ACME state lives under `tls.acme.storage`, shared by every process that serves it (a cluster's workers,
 * several gateways on one host):
 * ```
 * account.key                        the ACME account's key (PEM, 0600), made at the first order
 * certificates/<first domain>/       key.pem and cert.pem (the leaf, then the chain), replaced by rename
 * challenges/http-01/<token>         the key authorization a pending HTTP-01 challenge is answered with
 * challenges/tls-alpn-01/<domain>    the key and certificate (PEM) a pending TLS-ALPN-01 challenge is answered with
 * order.lock                         held by the one process ordering (acme-lock.ts)
 * ```
 * Challenges are files so that whichever process a validation request reaches answers it.
 */
export class AcmeStorage {
  readonly dir: string;
  readonly certificateDir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly accountKeyFile: string;
  readonly lockFile: string;
  readonly httpChallengeDir: string;
  readonly alpnChallengeDir: string;

  constructor(acme: Pick<AcmeConfig, 'storage' | 'domains'>) {
    this.dir = acme.storage;
    this.certificateDir = join(acme.storage, 'certificates', acme.domains[0] as string);
    this.certFile = join(this.certificateDir, 'cert.pem');
    this.keyFile = join(this.certificateDir, 'key.pem');
    this.accountKeyFile = join(acme.storage, 'account.key');
    this.lockFile = join(acme.storage, 'order.lock');
    this.httpChallengeDir = join(acme.storage, 'challenges', 'http-01');
    this.alpnChallengeDir = join(acme.storage, 'challenges', 'tls-alpn-01');
  }

  /** The account key, made by `create` and kept (0600) when there is none yet. */
  async accountKey(create: () => Promise<Buffer>): Promise<Buffer> {
    try {
      return await readFile(this.accountKeyFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const key = await create();
    await writeAtomically(this.accountKeyFile, key);
    return key;
  }

  /** Stores an issued certificate: the key first, then the certificate, each by rename, so a reader sees whole files. */
  async saveCertificate(certPem: string, keyPem: string): Promise<void> {
    await writeAtomically(this.keyFile, keyPem);
    await writeAtomically(this.certFile, certPem);
  }

  async publishHttpChallenge(token: string, keyAuthorization: string): Promise<void> {
    await writeAtomically(join(this.httpChallengeDir, token), keyAuthorization);
  }

  async publishAlpnChallenge(domain: string, keyPem: Buffer, certPem: Buffer): Promise<void> {
    await writeAtomically(join(this.alpnChallengeDir, domain), Buffer.concat([keyPem, Buffer.from('\n'), certPem]));
  }

  async withdrawHttpChallenge(token: string): Promise<void> {
    await rm(join(this.httpChallengeDir, token), { force: true });
  }

  async withdrawAlpnChallenge(domain: string): Promise<void> {
    await rm(join(this.alpnChallengeDir, domain), { force: true });
  }
}

async function writeAtomically(file: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, file);
}

/** The stored certificate of `acme`, or why there is none to serve. */
export type StoredCertificate =
  | { readonly certificate: TlsCertificate; readonly notBefore: number; readonly notAfter: number }
  | { readonly certificate: null; readonly reason: string };

/**
 * Reads the stored certificate with the checks every served certificate passes (read-certificates.ts) and one more:
 * it names exactly the configured domains, so adding a domain orders a new certificate. Synchronous: two small files,
 * read at a config load or when the storage directory changed, never on the request path.
 */
export function readStoredCertificate(storage: AcmeStorage, domains: readonly string[], minVersion: TlsVersion, nowMs = Date.now()): StoredCertificate {
  if (!existsSync(storage.certFile)) return { certificate: null, reason: 'no certificate stored yet' };
  const read = readCertificates([{ cert: storage.certFile, key: storage.keyFile }], minVersion, nowMs);
  const certificate = read.certificates[0];
  if (read.problems.length || !certificate) return { certificate: null, reason: read.problems.map((p) => p.message).join('; ') };
  const names = [...certificate.names].sort();
  const wanted = [...domains].sort();
  if (names.length !== wanted.length || names.some((n, i) => n !== wanted[i])) {
    return { certificate: null, reason: `${storage.certFile} names ${names.join(', ')}, not the configured ${wanted.join(', ')}` };
  }
  const x509 = new X509Certificate(certificate.certPem);
  return { certificate, notBefore: x509.validFromDate.getTime(), notAfter: x509.validToDate.getTime() };
}

/** Why `dir` cannot hold ACME state (null when it can): it, or the nearest directory above it, must be writable. */
export function storageProblem(dir: string): string | null {
  let at = dir;
  for (;;) {
    try {
      if (!statSync(at).isDirectory()) return `${at} is not a directory`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `cannot use ${at}: ${(err as Error).message}`;
      const up = dirname(at);
      if (up === at) return `${dir} cannot be created`;
      at = up;
      continue;
    }
    try {
      accessSync(at, constants.W_OK | constants.X_OK);
      return null;
    } catch {
      return at === dir ? `${dir} is not writable by this process` : `${dir} cannot be created: ${at} is not writable by this process`;
    }
  }
}

/** Why `file` cannot serve as the ACME server's trusted CAs (null when it can). */
export function caFileProblem(file: string): string | null {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    return `cannot read ${file}: ${(err as Error).message}`;
  }
  try {
    new X509Certificate(pem);
    return null;
  } catch (err) {
    return `${file} is not a PEM certificate: ${(err as Error).message}`;
  }
}
