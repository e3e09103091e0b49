import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type tls from 'node:tls';

export interface SClientResult {
  /** The certificate the server presented; null when the handshake failed. */
  readonly cert: X509Certificate | null;
  /** The ALPN protocol agreed, or null. */
  readonly alpn: string | null;
  /** s_client's whole output (stdout and stderr), for alerts and messages. */
  readonly out: string;
}

/** `openssl s_client -connect 127.0.0.1:port -servername name …`: what a client of that name is served. */
export function sClient(port: number, servername: string, args: readonly string[] = []): Promise<SClientResult> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, ...args], { timeout: 10_000 }, (_err, stdout, stderr) => {
      const pem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(stdout)?.[0];
      const alpn = /ALPN protocol: (\S+)/.exec(stdout)?.[1] ?? null;
      resolve({ cert: pem ? new X509Certificate(pem) : null, alpn, out: `${stdout}\n${stderr}` });
    });
    child.stdin?.end();
  });
}

/**
 * One HTTPS request on a connection of its own, not verifying the server (the ACME test CA's root is not at hand):
 * the status, and the fingerprint of the certificate served for `servername`.
 */
export function httpsFingerprint(port: number, servername: string, path: string): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, servername, rejectUnauthorized: false, agent: false, headers: { host: servername }, timeout: 10_000 }, (res) => {
      const fingerprint = (res.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}
