import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface IssueOptions {
  /** `openssl ca` dates (YYYYMMDDHHMMSSZ); by default valid from now for 2 days. */
  readonly startDate?: string;
  readonly endDate?: string;
  /** The subject's common name; by default the first name. */
  readonly commonName?: string;
}

/** A leaf certificate and its key, as absolute paths. */
export interface IssuedCertificate {
  readonly cert: string;
  readonly key: string;
}

/** A private CA made with the `openssl` CLI in a temporary directory, issuing server certificates for DNS names. */
export interface CertificateAuthority {
  readonly dir: string;
  /** The CA certificate (PEM file), for clients' trust. */
  readonly caFile: string;
  /** Its content, for clients given the CA as a buffer. */
  readonly caPem: Buffer;
  /** Issues `<file>.crt` and `<file>.key` in `dir` (or in `into`) for `names` (DNS subjectAltNames; none: no SAN). */
  issue(file: string, names: readonly string[], options?: IssueOptions, into?: string): Promise<IssuedCertificate>;
  remove(): Promise<void>;
}

const CA_CONFIG = `[ ca ]
default_ca = gantry
[ gantry ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
`;

export async function createCertificateAuthority(): Promise<CertificateAuthority> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-ca-'));
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir, timeout: 20_000 });
  const ecKey = (file: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', file);
  await ecKey('ca.key');
  await openssl('req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=gantry test CA');
  await writeFile(join(dir, 'ca.cnf'), CA_CONFIG);
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  // openssl ca writes its database: one issue at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const issue = async (file: string, names: readonly string[], options: IssueOptions = {}, into = dir): Promise<IssuedCertificate> => {
    const key = join(into, `${file}.key`);
    const cert = join(into, `${file}.crt`);
    const csr = join(dir, `${file}.csr`);
    const ext = join(dir, `${file}.ext`);
    await ecKey(key);
    await openssl('req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${options.commonName ?? names[0] ?? file}`);
    await writeFile(ext, `${names.length ? `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n` : ''}extendedKeyUsage=serverAuth\n`);
    const dates = options.startDate || options.endDate
      ? ['-startdate', options.startDate ?? '20200101000000Z', '-enddate', options.endDate ?? '20991231000000Z']
      : ['-days', '2'];
    const done = queue.then(() => openssl('ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key', '-notext',
      '-in', csr, '-out', cert, '-extfile', ext, ...dates));
    queue = done.catch(() => {});
    await done;
    return { cert, key };
  };
  const caFile = join(dir, 'ca.crt');
  return { dir, caFile, caPem: await readFile(caFile), issue, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** What `openssl s_client` saw: the served certificate's subject CN, the protocol, or the handshake's failure. */
export interface ClientHandshake {
  readonly ok: boolean;
  readonly subjectCN: string | null;
  readonly protocol: string | null;
  readonly output: string;
}

/**
 * One handshake with `openssl s_client` to 127.0.0.1:port; `servername` null sends no SNI. `extra` adds options
 * (`-tls1_1`, `-tls1_2`).
 */
export async function sClient(port: number, servername: string | null, extra: readonly string[] = []): Promise<ClientHandshake> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, ...(servername === null ? ['-noservername'] : ['-servername', servername]), ...extra];
  let output: string;
  let ok = true;
  try {
    const child = run('openssl', args, { timeout: 15_000 });
    child.child.stdin?.end();
    const { stdout, stderr } = await child;
    output = stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    output = (e.stdout ?? '') + (e.stderr ?? '');
    ok = false;
  }
  const subject = /^subject=.*CN\s*=\s*([^,\n]+)/m.exec(output);
  const protocol = /Protocol\s*:\s*(\S+)/.exec(output) ?? /New, (TLSv[\d.]+),/.exec(output);
  const handshake = /New, TLSv/.test(output) && !/Cipher is \(NONE\)/.test(output);
  return { ok: ok && handshake, subjectCN: subject?.[1]?.trim() ?? null, protocol: protocol?.[1] ?? null, output };
}
