import { X509Certificate } from 'node:crypto';
import type { UpstreamTlsConfig } from '../config/gateway-config.js';
import { readKeyPair, readText } from './read-certificates.js';
import { upstreamSecureContext } from './upstream-secure-context.js';

/** A service's `tls:` with its paths made absolute, before the files are read. */
export interface UpstreamTlsFiles {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly serverName?: string;
}

export interface UpstreamTlsProblem {
  readonly field: 'caFile' | 'certFile' | 'keyFile';
  readonly message: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The CA file's text, when it holds PEM certificates only (a bundle may hold several), or why not. */
function readCaFile(path: string): string | string[] {
  const text = readText(path);
  if (text instanceof Error) return [`cannot read ${path}: ${text.message}`];
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return [`${path} holds no PEM certificate`];
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      return [`${path} holds a certificate that cannot be parsed: ${(err as Error).message}`];
    }
  }
  return text;
}

/**
 * Reads and checks a service's upstream TLS files, as `tls.certificates` are checked (read-certificates.ts): the CA
 * file PEM certificates, the client certificate and key a valid pair, and OpenSSL willing to use them together.
 * Synchronous: a few small files at a config load, never on the request path.
 */
export function readUpstreamTls(files: UpstreamTlsFiles, nowMs = Date.now()): { tls: UpstreamTlsConfig; problems: UpstreamTlsProblem[] } {
  const problems: UpstreamTlsProblem[] = [];
  let caPem: string | undefined;
  let certPem: string | undefined;
  let keyPem: string | undefined;
  if (files.caFile !== undefined) {
    const read = readCaFile(files.caFile);
    if (typeof read === 'string') caPem = read;
    else for (const message of read) problems.push({ field: 'caFile', message });
  }
  if (files.certFile !== undefined && files.keyFile !== undefined) {
    const read = readKeyPair(files.certFile, files.keyFile, nowMs);
    for (const p of read.problems) problems.push({ field: p.field === 'cert' ? 'certFile' : 'keyFile', message: p.message });
    certPem = read.pair?.certPem;
    keyPem = read.pair?.keyPem;
  }
  const tls: UpstreamTlsConfig = { ...files, caPem, certPem, keyPem };
  if (problems.length === 0) {
    try {
      upstreamSecureContext(tls);
    } catch (err) {
      problems.push({ field: files.certFile !== undefined ? 'certFile' : 'caFile', message: `OpenSSL refuses these files: ${(err as Error).message}` });
    }
  }
  return { tls, problems };
}
