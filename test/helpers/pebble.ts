import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateAuthority } from './certificate-authority.js';
import { waitFor } from './capture-log.js';
import { freePort } from './free-port.js';

export interface Pebble {
  /** The ACME directory URL. */
  readonly directory: string;
  /** Everything pebble printed, line by line. */
  readonly log: string[];
  /** Orders pebble finalized (it logs one line per issued certificate). */
  issued(): number;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Where its validation authority reaches the gateway: the plain and the TLS listener's ports on 127.0.0.1. */
  readonly httpPort: number;
  readonly tlsPort: number;
  /** A name server (host:port) resolving the test's domains to 127.0.0.1 (test/helpers/dnsmasq.ts). */
  readonly dnsServer: string;
  /** Lifetime of the certificates it issues; pebble's default is 5 years. */
  readonly validityS?: number;
}

/**
 * Starts Debian's pebble (an RFC 8555 test CA) on loopback ports. The package ships no certificate for pebble's own
 * HTTPS listener (its test/certs/ minica is not in it), so `ca` issues one for localhost, and the gateway trusts
 * `ca.caFile` (tls.acme.caFile). No sleeps in its validation authority, no nonce rejected on purpose, no
 * authorization reused: every order proves its challenge.
 */
export async function startPebble(ca: CertificateAuthority, options: PebbleOptions): Promise<Pebble> {
  const port = await freePort();
  const management = await freePort();
  const name = `pebble-${port}`;
  const listener = await ca.issue(name, ['localhost']);
  const config = join(ca.dir, `${name}.json`);
  await writeFile(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`, managementListenAddress: `127.0.0.1:${management}`,
      certificate: listener.cert, privateKey: listener.key,
      httpPort: options.httpPort, tlsPort: options.tlsPort, ocspResponderURL: '', externalAccountBindingRequired: false,
      ...(options.validityS === undefined ? {} : { certificateValidityPeriod: options.validityS }),
    },
  }));
  const child: ChildProcess = spawn('pebble', ['-config', config, '-dnsserver', options.dnsServer], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
  });
  const log: string[] = [];
  let pending = '';
  const onData = (c: Buffer) => {
    pending += c.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    log.push(...lines);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => log.push(`spawn error: ${err.message}`));
  const up = await waitFor(() => (log.some((l) => l.includes(`Listening on: 127.0.0.1:${port}`)) ? 'up'
    : child.exitCode !== null || log.some((l) => l.startsWith('spawn error')) ? 'failed' : undefined), 10_000, 'pebble started', 20).catch(() => 'failed');
  if (up === 'failed') {
    child.kill('SIGKILL');
    throw new Error(`pebble did not start: ${log.join('\n')}`);
  }
  return {
    directory: `https://localhost:${port}/dir`,
    log,
    issued: () => log.filter((l) => l.includes('Issued certificate serial')).length,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
