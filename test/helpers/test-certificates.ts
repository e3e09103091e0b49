import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM files made by `openssl` in a temporary directory: a CA, a server certificate for 127.0.0.1, a client one. */
export interface TestCertificates {
  readonly dir: string;
  /** File names inside `dir`. */
  readonly files: { readonly ca: string; readonly serverCert: string; readonly serverKey: string; readonly clientCert: string; readonly clientKey: string };
  read(name: keyof TestCertificates['files']): Promise<Buffer>;
  remove(): Promise<void>;
}

/** A private CA that signs a server certificate (SAN 127.0.0.1, ::1, localhost) and a client certificate. */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-certs-'));
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir, timeout: 20_000 });
  const key = (file: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', file);
  await key('ca-key.pem');
  await openssl('req', '-x509', '-new', '-key', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=gantry test CA');
  const sign = async (name: string, subject: string, extensions: string) => {
    await key(`${name}-key.pem`);
    await openssl('req', '-new', '-key', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subject);
    await writeFile(join(dir, `${name}.ext`), extensions);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2',
      '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  };
  await sign('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await sign('client', '/CN=gantry', 'extendedKeyUsage=clientAuth\n');
  const files = { ca: 'ca.pem', serverCert: 'server.pem', serverKey: 'server-key.pem', clientCert: 'client.pem', clientKey: 'client-key.pem' };
  return {
    dir, files,
    read: (name) => readFile(join(dir, files[name])),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
