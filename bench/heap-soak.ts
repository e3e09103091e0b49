/**
 * `npm run bench:heap`: does Gantry keep memory per request? It runs the gateway in this process (started with
 * --expose-gc), sends a steady paced load through it from autocannon in a child process, and every 30 s records
 * the heap used after two full collections. A leak shows as a rising line; garbage waiting for the next major GC
 * (which is what RSS and the heap floor of `bench:idle --soak` move with) does not. Issue 8: "no growth over a
 * 10-minute soak".
 *
 *   npm run bench:heap -- [--seconds 300] [--rate 2000] [--no-write]
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGateway } from '../gateway/create-gateway.js';
import { appendResults, environmentLines, runCapacityBench, type CapacityRun } from './capacity-run.js';
import { startUpstream } from './targets.js';

const require = createRequire(import.meta.url);
const SAMPLE_EVERY_MS = 30_000;
const mib = (bytes: number) => bytes / 2 ** 20;

async function main(run: CapacityRun): Promise<number> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '300' }, rate: { type: 'string', default: '2000' }, 'no-write': { type: 'boolean' } } });
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench:heap does)');
  const env = await environmentLines();
  process.stdout.write(`${env.lines.join('\n')}\n`);

  const upstream = await startUpstream(run.group, 100, undefined, seconds + 120);
  const file = join(run.workDir, 'routes.yaml');
  writeFileSync(file, `listen: 127.0.0.1:0
admin: null
log: { level: info, access: true, file: ${join(run.workDir, 'gantry.log')} }
services:
  upstream: { discovery: { type: static, endpoints: ["http://127.0.0.1:${upstream.port}"] } }
routes:
  - { name: bench, match: { path: /bench }, service: upstream }
`);
  const gateway = await createGateway({ configFile: file });
  const samples: { atS: number; heapMiB: number; rssMiB: number }[] = [];
  const started = performance.now();
  const sample = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    samples.push({ atS: Math.round((performance.now() - started) / 1000), heapMiB: mib(m.heapUsed), rssMiB: mib(m.rss) });
    const s = samples.at(-1)!;
    process.stdout.write(`${String(s.atS).padStart(5)} s  heap after GC ${s.heapMiB.toFixed(2)} MiB  RSS ${s.rssMiB.toFixed(1)} MiB\n`);
  };
  try {
    const load = run.group.spawn('autocannon', process.execPath, [require.resolve('autocannon/autocannon.js'), '-c', '50', '-R', String(rate), '-d', String(seconds), '-j', `http://127.0.0.1:${gateway.address().port}/bench`],
      { stdio: ['ignore', 'pipe', 'ignore'], maxLifetimeS: seconds + 60 });
    let out = '';
    load.proc.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const timer = setInterval(sample, SAMPLE_EVERY_MS);
    await load.exited;
    clearInterval(timer);
    const result = JSON.parse(out) as { requests: { total: number }; errors: number; non2xx: number };
    const first = samples[0];
    const last = samples.at(-1);
    if (!first || !last) throw new Error('no sample: run for at least 30 s');
    const summary = `${result.requests.total} requests at ${rate}/s asked over ${seconds} s, ${result.errors + result.non2xx} failed; heap used after a full GC ${first.heapMiB.toFixed(2)} MiB at ${first.atS} s, ${last.heapMiB.toFixed(2)} MiB at ${last.atS} s (${(last.heapMiB - first.heapMiB >= 0 ? '+' : '')}${((last.heapMiB - first.heapMiB) * 1024).toFixed(0)} KiB); RSS ${first.rssMiB.toFixed(1)} -> ${last.rssMiB.toFixed(1)} MiB`;
    process.stdout.write(`\n- ${summary}\n`);
    if (!values['no-write']) {
      const rows = samples.map((s) => `| ${s.atS} | ${s.heapMiB.toFixed(2)} | ${s.rssMiB.toFixed(1)} |`).join('\n');
      appendResults(`\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · heap after GC under steady traffic (\`npm run bench:heap\`)\n\n${env.lines.join('\n')}\n- Gantry in the benchmark's process (access log on, to a file), autocannon paced in a child, upstream in a child; unpinned.\n\n- ${summary}\n\n| s | heap used after GC (MiB) | RSS (MiB) |\n|---|---|---|\n${rows}\n`);
    }
    return result.errors + result.non2xx === 0 ? 0 : 1;
  } finally {
    await gateway.shutdown(1000);
  }
}

runCapacityBench('heap-soak', main);
