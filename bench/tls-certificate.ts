import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { TlsFiles } from './scenarios/scenario.js';

export type KeyType = 'ecdsa' | 'rsa';

const KINDS: Record<KeyType, { readonly kind: string; readonly args: readonly string[] }> = {
  ecdsa: { kind: 'ECDSA P-256', args: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] },
  rsa: { kind: 'RSA 2048', args: ['-newkey', 'rsa:2048'] },
};

/**
 * The self-signed certificate every TLS system of a run serves (gantry, nginx, direct alike), made with openssl in
 * `dir`: CN localhost, subjectAltNames localhost and 127.0.0.1, valid 2 days. ECDSA P-256 is what a site would pick
 * today (the cheaper handshake for the server); RSA 2048 moves the cost of a handshake from the client to the server.
 */
export function makeCertificate(dir: string, type: KeyType): TlsFiles {
  const { kind, args } = KINDS[type];
  const cert = join(dir, `${type}.crt`);
  const key = join(dir, `${type}.key`);
  execFileSync('openssl', ['req', '-x509', ...args, '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { cert, key, kind };
}

export function keyType(value: string | undefined): KeyType {
  if (value === undefined || value === 'ecdsa' || value === 'rsa') return value ?? 'ecdsa';
  throw new Error(`--cert must be ecdsa or rsa, not "${value}"`);
}
