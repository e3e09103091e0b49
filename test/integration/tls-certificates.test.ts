import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { waitFor } from '../helpers/capture-log.js';
import { createCertificateAuthority, sClient, type CertificateAuthority } from '../helpers/certificate-authority.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { handshake, httpsGet } from '../helpers/tls-clients.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../gateway/cli.js', import.meta.url));

let ca: CertificateAuthority;
t.before(async () => { ca = await createCertificateAuthority(); });
t.teardown(() => ca.remove());

function routes(upstream: string, tlsBlock: string): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: debug }
${tlsBlock}services:
  svc: { discovery: { type: static, endpoints: ["${upstream}"] } }
routes:
  - { match: { path: / }, service: svc }
`;
}

const certificatesBlock = (pairs: readonly { cert: string; key: string }[], extra = '') =>
  `tls:\n  listen: 127.0.0.1:0\n${extra}  certificates:\n${pairs.map((p) => `    - { cert: ${p.cert}, key: ${p.key} }\n`).join('')}`;

t.test('gantry validate refuses each bad certificate at its entry, file:line:col', async (t) => {
  const dir = join(ca.dir, 'validate');
  await mkdir(join(dir, 'tls'), { recursive: true });
  const good = await ca.issue('good', ['good.test'], {}, join(dir, 'tls'));
  const other = await ca.issue('other', ['other.test'], {}, join(dir, 'tls'));
  await ca.issue('expired', ['expired.test'], { startDate: '20200101000000Z', endDate: '20200201000000Z' }, join(dir, 'tls'));
  await ca.issue('future', ['future.test'], { startDate: '20990101000000Z', endDate: '20991231000000Z' }, join(dir, 'tls'));
  await ca.issue('dup', ['dup.test', 'good.test'], {}, join(dir, 'tls'));
  await ca.issue('nosan', [], { commonName: 'nosan.test' }, join(dir, 'tls'));
  await writeFile(join(dir, 'tls', 'garbage.crt'), 'not a certificate\n');
  await writeFile(join(dir, 'tls', 'garbage.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
  t.ok(good && other);
  // Paths relative to routes.yaml; each entry on its own line so each problem has a line of its own.
  const entries = [
    ['tls/good.crt', 'tls/good.key'],
    ['tls/other.crt', 'tls/good.key'],      // 1: not its key
    ['tls/expired.crt', 'tls/expired.key'], // 2
    ['tls/future.crt', 'tls/future.key'],   // 3
    ['tls/missing.crt', 'tls/good.key'],    // 4: unreadable
    ['tls/garbage.crt', 'tls/good.key'],    // 5: not PEM
    ['tls/good.crt', 'tls/garbage.key'],    // 6: not a key
    ['tls/dup.crt', 'tls/dup.key'],         // 7: good.test twice
    ['tls/nosan.crt', 'tls/nosan.key'],     // 8: names no host
  ] as const;
  const yaml = routes('http://127.0.0.1:1', certificatesBlock(entries.map(([cert, key]) => ({ cert, key }))));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, yaml);
  const lineOf = (i: number) => yaml.split('\n').findIndex((l) => l.startsWith('    - {')) + 1 + i;
  const certCol = '    - { cert: '.length + 1;
  const keyCol = (i: number) => `    - { cert: ${entries[i]![0]}, key: `.length + 1;
  const out = await run(process.execPath, [CLI, 'validate', '-c', file]).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
  t.equal(out.code, 1);
  const at = (i: number, field: 'cert' | 'key') => `${file}:${lineOf(i)}:${field === 'cert' ? certCol : keyCol(i)}: tls.certificates[${i}].${field}: `;
  t.match(out.stderr, `${at(1, 'key')}${join(dir, 'tls/good.key')} is not the key of ${join(dir, 'tls/other.crt')}`);
  t.match(out.stderr, `${at(2, 'cert')}${join(dir, 'tls/expired.crt')} expired on 2020-02-01T00:00:00.000Z`);
  t.match(out.stderr, `${at(3, 'cert')}${join(dir, 'tls/future.crt')} is not valid yet: from 2099-01-01T00:00:00.000Z`);
  t.match(out.stderr, `${at(4, 'cert')}cannot read ${join(dir, 'tls/missing.crt')}: ENOENT`);
  t.match(out.stderr, `${at(5, 'cert')}${join(dir, 'tls/garbage.crt')} is not a PEM certificate`);
  t.match(out.stderr, `${at(6, 'key')}${join(dir, 'tls/garbage.key')} is not a PEM private key`);
  t.match(out.stderr, `${at(7, 'cert')}good.test is also a name of certificates[0]`);
  t.match(out.stderr, `${at(8, 'cert')}${join(dir, 'tls/nosan.crt')} names no host`);
  t.match(out.stderr, `${file}: 8 problems`);

  // The same file with only the good entry passes.
  await writeFile(file, routes('http://127.0.0.1:1', certificatesBlock([{ cert: 'tls/good.crt', key: 'tls/good.key' }])));
  const ok = await run(process.execPath, [CLI, 'validate', '-c', file]);
  t.match(ok.stdout, ': ok (');
});

t.test('SNI chooses the exact name, then a one-label wildcard, then the first certificate', async (t) => {
  const dflt = await ca.issue('sni-default', ['default.test']);
  const api = await ca.issue('sni-api', ['api.example.test']);
  const wild = await ca.issue('sni-wild', ['*.example.test']);
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url, certificatesBlock([dflt, wild, api])));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const port = gw.gateway.tlsAddress()!.port;
  const served = async (name: string | null) => (await sClient(port, name)).subjectCN;
  t.equal(await served('api.example.test'), 'api.example.test', 'the exact name wins over the wildcard listed before it');
  t.equal(await served('API.Example.TEST'), 'api.example.test', 'names compare case-insensitively');
  t.equal(await served('www.example.test'), '*.example.test', 'a wildcard covers one label');
  t.equal(await served('a.b.example.test'), 'default.test', 'not two');
  t.equal(await served('example.test'), 'default.test', 'nor the bare domain');
  t.equal(await served('unknown.test'), 'default.test', 'a name no certificate covers gets the first one');
  t.equal(await served(null), 'default.test', 'so does a client without SNI');

  const answer = await httpsGet(port, 'api.example.test', '/hello', ca.caPem);
  t.equal(answer.status, 200, 'a client that verifies the chain and the name is served');
  t.equal(answer.subjectCN, 'api.example.test');
});

t.test('protocol versions below minVersion are refused at the handshake', async (t) => {
  const cert = await ca.issue('versions', ['versions.test']);
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url, certificatesBlock([cert])));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const port = gw.gateway.tlsAddress()!.port;
  // The client can speak TLS 1.1: a server that allows it completes that handshake.
  const control = tls.createServer({ cert: await readFile(cert.cert), key: await readFile(cert.key), minVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
  control.listen(0, '127.0.0.1');
  await once(control, 'listening');
  t.teardown(() => { control.close(); });
  const legacy = ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'];
  t.equal((await sClient((control.address() as AddressInfo).port, 'versions.test', legacy)).ok, true, 'control: TLS 1.1 works against a server that allows it');
  const refused = await sClient(port, 'versions.test', legacy);
  t.equal(refused.ok, false, 'TLS 1.1 is refused with the default minVersion TLSv1.2');
  t.match(refused.output, /protocol version/);
  t.match(await sClient(port, 'versions.test', ['-tls1_2']), { ok: true, protocol: 'TLSv1.2' });

  // minVersion follows a reload.
  await gw.rewrite(routes(up.url, certificatesBlock([cert], '  minVersion: TLSv1.3\n')));
  t.match(await gw.gateway.reload(), { result: 'applied' });
  t.equal((await sClient(port, 'versions.test', ['-tls1_2'])).ok, false, 'TLS 1.2 is refused with minVersion TLSv1.3');
  t.equal((await sClient(port, 'versions.test', ['-tls1_2', '-noservername'])).ok, false, 'with or without SNI');
  t.match(await sClient(port, 'versions.test', ['-tls1_3']), { ok: true, protocol: 'TLSv1.3' });
});

t.test('SIGHUP serves a new certificate; a bad one is refused at file:line:col and the old one keeps serving', async (t) => {
  const first = await ca.issue('hup-first', ['hup.test']);
  const up = await startRecordingUpstream();
  const gw = await spawnGateway(routes(up.url, certificatesBlock([first])));
  t.teardown(async () => { await gw.kill(); await up.close(); });
  const port = (gw.logs.find((l) => l.event === 'started')!.tls as { port: number }).port;
  const firstPrint = (await handshake(port, 'hup.test', ca.caPem)).fingerprint;

  // In a directory of its own, which no watcher looks at: only the reload can pick it up.
  await mkdir(join(ca.dir, 'hup'), { recursive: true });
  const second = await ca.issue('hup-second', ['hup.test'], {}, join(ca.dir, 'hup'));
  await gw.rewrite(routes(up.url, certificatesBlock([second])));
  t.equal((await handshake(port, 'hup.test', ca.caPem)).fingerprint, firstPrint, 'nothing changes before the signal');
  gw.child.kill('SIGHUP');
  await gw.waitForLog((l) => l.event === 'reloaded');
  const secondPrint = (await handshake(port, 'hup.test', ca.caPem)).fingerprint;
  t.not(secondPrint, firstPrint, 'the new certificate is served after SIGHUP');
  t.equal((await httpsGet(port, 'hup.test', '/x', ca.caPem)).status, 200);

  // The key of another certificate: refused with its position, the served certificate stays.
  const from = gw.logs.length;
  const yaml = routes(up.url, certificatesBlock([{ cert: second.cert, key: first.key }]));
  await gw.rewrite(yaml);
  gw.child.kill('SIGHUP');
  const refused = await gw.waitForLog((l) => l.event === 'reload-refused', 10_000, from);
  const line = yaml.split('\n').findIndex((l) => l.startsWith('    - {')) + 1;
  t.match(String(refused.msg), new RegExp(`routes\\.yaml:${line}:\\d+: tls\\.certificates\\[0\\]\\.key: .* is not the key of `));
  t.equal((await handshake(port, 'hup.test', ca.caPem)).fingerprint, secondPrint, 'the previous certificate still serves');
});

/** A Kubernetes secret volume: the files are symlinks through `..data`, which is swapped to a new timestamped directory. */
async function secretVolume(dir: string) {
  await mkdir(dir, { recursive: true });
  let n = 0;
  const swap = async (fill: (into: string) => Promise<unknown>) => {
    const version = `..2026_${++n}`;
    await mkdir(join(dir, version));
    await fill(join(dir, version));
    await symlink(version, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  return {
    cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), swap,
    async init(fill: (into: string) => Promise<unknown>) {
      await swap(fill);
      await symlink('..data/tls.crt', join(dir, 'tls.crt'));
      await symlink('..data/tls.key', join(dir, 'tls.key'));
    },
  };
}

const issueAs = (file: string, names: string[]) => async (into: string) => {
  const issued = await ca.issue(`${file}`, names, {}, ca.dir);
  await writeFile(join(into, 'tls.crt'), await readFile(issued.cert));
  await writeFile(join(into, 'tls.key'), await readFile(issued.key));
};

t.test('a certificate rotated by a symlink swap is served within 2 s, while HTTPS requests and an h2load run keep succeeding', async (t) => {
  const volume = await secretVolume(join(ca.dir, 'volume-rotate'));
  await volume.init(issueAs('rotate-1', ['rotate.test']));
  // h2load's requests are held upstream until the new certificate is served: its connections, opened before the swap,
  // carry requests across it and after it, however slow the machine.
  let released = false;
  const held: (() => void)[] = [];
  const up = await startRecordingUpstream((req, res) => {
    const answer = () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok\n'); };
    if (req.url === '/h2load' && !released) held.push(answer); else answer();
  });
  const release = () => { released = true; for (const answer of held.splice(0)) answer(); };
  const gw = await startGateway(routes(up.url, certificatesBlock([volume])));
  t.teardown(async () => { release(); await gw.close(); await up.close(); });
  const port = gw.gateway.tlsAddress()!.port;
  const before = (await handshake(port, 'rotate.test', ca.caPem)).fingerprint;

  // Two client loops, each request on a new connection (a new handshake, so each sees the certificate of its time).
  const seen = new Set<string>();
  let ok = 0;
  const failures: string[] = [];
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        const answer = await httpsGet(port, 'rotate.test', '/loop', ca.caPem);
        if (answer.status === 200) ok++; else failures.push(`status ${answer.status}`);
        seen.add(answer.fingerprint);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = [loop(), loop()];
  t.teardown(() => { running = false; });
  await waitFor(() => ok >= 5, 10_000, 'requests before the swap');
  // HTTP/2 load on two long-lived connections across the swap (h2load from nghttp2-client, 400 requests, 4 at a time on
  // each). Bounded: a connection without traffic for 20 s is given up (-N), the process killed after 60 s whatever it does.
  const h2log = join(ca.dir, 'h2load-rotate.log');
  const h2loadRun = run('h2load', ['-n', '400', '-c', '2', '-m', '4', '-N', '20', '--log-file', h2log, `https://127.0.0.1:${port}/h2load`], { timeout: 60_000, killSignal: 'SIGKILL' });
  t.teardown(() => { h2loadRun.child.kill('SIGKILL'); });
  const h2load = h2loadRun.catch((err: { stdout?: string; signal?: string }) => ({ stdout: `${err.stdout ?? ''}\nh2load ended by ${err.signal ?? 'an error'}` }));
  await waitFor(() => up.requests.some((r) => r.url === '/h2load'), 10_000, 'h2load connected with the old certificate');
  const next = await ca.issue('rotate-2', ['rotate.test'], {}, ca.dir);
  const nextPrint = new X509Certificate(await readFile(next.cert)).fingerprint256;
  const swappedAt = Date.now();
  await volume.swap(async (into) => {
    await writeFile(join(into, 'tls.crt'), await readFile(next.cert));
    await writeFile(join(into, 'tls.key'), await readFile(next.key));
  });
  await waitFor(() => seen.has(nextPrint), 2000, 'the new certificate served');
  const servedAt = Date.now();
  release();
  const atSwap = ok;
  await waitFor(() => ok >= atSwap + 5, 10_000, 'requests after the swap');
  running = false;
  await Promise.all(loops);
  const summary = (await h2load).stdout;
  const counts = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(summary);
  t.equal(counts?.[2], '400', `h2load got answers across the swap: ${counts?.[0] ?? summary}; ${/finished in [^\n]*/.exec(summary)?.[0]}`);
  t.equal(counts?.[3], '0', 'no h2load request failed');
  t.equal(counts?.[4], '0', 'no h2load request errored');
  t.equal(counts?.[5], '0', 'no h2load request timed out');
  // Its log: one line per request, "start (µs since the epoch)\tstatus\tduration (µs)".
  const afterServed = (await readFile(h2log, 'utf8')).split('\n').map((l) => l.split('\t'))
    .filter(([startUs, status]) => Number(startUs) / 1000 > servedAt && status === '200').length;
  t.ok(afterServed > 0, `the connections opened before the swap kept being answered after it (${afterServed} requests)`);
  t.ok(seen.has(before), 'the old certificate was served before');
  t.same(failures, [], `no request failed (${ok} succeeded; the new certificate came after ${servedAt - swappedAt} ms)`);
  t.ok(gw.logs.some((l) => l.event === 'tls-certificates-loaded' && l.cause === 'file-change'));
});

t.test('a bad certificate swapped in on disk is logged and the served one stays; a good one after it is served', async (t) => {
  const volume = await secretVolume(join(ca.dir, 'volume-bad'));
  await volume.init(issueAs('bad-1', ['bad.test']));
  const up = await startRecordingUpstream();
  const gw = await startGateway(routes(up.url, certificatesBlock([volume])));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const port = gw.gateway.tlsAddress()!.port;
  const served = (await handshake(port, 'bad.test', ca.caPem)).fingerprint;

  const other = await ca.issue('bad-other', ['bad.test'], {}, ca.dir);
  const expired = await ca.issue('bad-expired', ['bad.test'], { startDate: '20200101000000Z', endDate: '20200201000000Z' }, ca.dir);
  // A certificate with the key of another, then an expired one.
  for (const [cert, key, problem] of [[other.cert, expired.key, /is not the key of/], [expired.cert, expired.key, /expired on 2020-02-01/]] as const) {
    const from = gw.logs.length;
    await volume.swap(async (into) => {
      await writeFile(join(into, 'tls.crt'), await readFile(cert));
      await writeFile(join(into, 'tls.key'), await readFile(key));
    });
    await waitFor(() => gw.logs.slice(from).some((l) => l.event === 'tls-certificates-refused'), 5000, 'the refusal logged');
    const refusal = gw.logs.slice(from).find((l) => l.event === 'tls-certificates-refused')!;
    t.match(String((refusal.problems as string[])[0]), problem);
    t.equal((await handshake(port, 'bad.test', ca.caPem)).fingerprint, served, 'the previous certificate still serves');
    t.equal((await httpsGet(port, 'bad.test', '/', ca.caPem)).status, 200);
  }

  await volume.swap(issueAs('bad-good', ['bad.test']));
  await waitFor(() => gw.logs.some((l) => l.event === 'tls-certificates-loaded'), 5000, 'the good one loaded');
  t.not((await handshake(port, 'bad.test', ca.caPem)).fingerprint, served, 'a good certificate after a bad one is served');
});
