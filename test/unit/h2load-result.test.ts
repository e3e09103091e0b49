import t from 'tap';
import { h2loadNegotiated, h2loadResult } from '../../bench/load-generator.js';

t.test('h2load\'s summary and per-request log become a LoadResult: percentiles of the 2xx answers, failures counted apart', async (t) => {
  const summary = `finished in 2.50s, 4.00 req/s, 1KB/s
requests: 12 total, 12 started, 12 done, 9 succeeded, 3 failed, 1 errored, 1 timeout
status codes: 9 2xx, 0 3xx, 0 4xx, 1 5xx`;
  const ok = [100, 200, 300, 400, 500, 600, 700, 800, 2000].map((us, i) => `17956647718077${i}\t200\t${us}`);
  const log = [...ok, '1795664771807800\t503\t150', '1795664771807801\t-1\t0', ''].join('\n');
  t.same(h2loadResult(summary, log), { requests: 9, durationS: 2.5, rps: 3.6, p50Ms: 0.5, p99Ms: 2, maxMs: 2, httpErrors: 1, socketErrors: 2 });
  t.equal(h2loadResult(summary.replace('2.50s', '803.34ms'), log).durationS, 0.80334, 'a short run is reported in ms');
  t.throws(() => h2loadResult('no summary', log), /no summary/);
});

t.test('the TLS lines of h2load\'s summary become one "negotiated" line; none without TLS', async (t) => {
  const summary = `starting benchmark...
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
progress: 10% done`;
  t.equal(h2loadNegotiated(summary), 'TLSv1.3, TLS_AES_128_GCM_SHA256, X25519 253 bits, h2');
  t.equal(h2loadNegotiated('starting benchmark...\nApplication protocol: h2c\n'), 'h2c');
  t.equal(h2loadNegotiated('finished in 1s'), undefined);
});
