/**
 * `npm run bench:scrape`: how long does a Prometheus scrape stall the data plane when many routes carry traffic?
 * Gantry runs as a user runs it (optionally with --workers N) on a file of N routes, every route gets one request
 * (so each has its series), then a paced load runs twice on one route: once alone, once while GET /metrics is
 * scraped several times. Reported: the load's p50, p99 and slowest request (h2load), and each scrape's time and size.
 *
 *   npm run bench:scrape -- [--routes 10000] [--workers 2] [--scrapes 4] [--rate 200] [--seconds 10] [--no-write]
 */
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { appendResults, environmentLines, runCapacityBench, type CapacityRun } from './capacity-run.js';
import { pacedGenerator, type LoadResult } from './load-generator.js';
import { startGantry, startUpstream } from './targets.js';

function get(port: number, path: string, agent: http.Agent | false): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
    }).on('error', reject);
  });
}

async function main(run: CapacityRun): Promise<number> {
  const { values } = parseArgs({ options: {
    routes: { type: 'string', default: '10000' }, workers: { type: 'string' }, scrapes: { type: 'string', default: '4' },
    rate: { type: 'string', default: '200' }, seconds: { type: 'string', default: '10' }, 'no-write': { type: 'boolean' },
  } });
  const routes = Number(values.routes);
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  const scrapes = Number(values.scrapes);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const env = await environmentLines();
  process.stdout.write(`${env.lines.join('\n')}\n`);

  const upstream = await startUpstream(run.group, 100, undefined, 600);
  const lines = Array.from({ length: routes }, (_, i) => `  - { name: r${i}, match: { path: /r${i} }, service: up }`);
  const gantry = await startGantry(run.group, {
    dir: run.workDir, cpu: undefined, maxLifetimeS: 600, workers,
    routesYaml: `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nlog: { level: info, access: false }\nservices:\n  up: { discovery: { type: static, endpoints: ["http://127.0.0.1:${upstream.port}"] } }\nroutes:\n${lines.join('\n')}\n`,
  });
  const admin = gantry.adminPort as number;
  // Every route once, so each has its series (they start with a route's first request).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  await Promise.all(Array.from({ length: 20 }, async (_, k) => {
    for (let i = k; i < routes; i += 20) await get(gantry.port, `/r${i}`, agent);
  }));
  agent.destroy();

  const paced = pacedGenerator(run.workDir);
  const load = () => paced.run(run.group, { url: `http://127.0.0.1:${gantry.port}/r1`, request: { method: 'GET', headers: {}, body: '' }, connections: 10, durationS: seconds, ratePerS: rate });
  const quiet = await load();
  const scraped: { ms: number; bytes: number }[] = [];
  const scraping = (async () => {
    for (let i = 0; i < scrapes; i++) {
      await new Promise((r) => setTimeout(r, (seconds * 1000) / (scrapes + 1)));
      const t = performance.now();
      const r = await get(admin, '/metrics', false);
      if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}`);
      scraped.push({ ms: performance.now() - t, bytes: r.bytes });
    }
  })();
  const [busy] = await Promise.all([load(), scraping]);

  const row = (name: string, r: LoadResult) => `| ${name} | ${r.p50Ms.toFixed(2)} ms | ${r.p99Ms.toFixed(2)} ms | ${r.maxMs === undefined ? '–' : `${r.maxMs.toFixed(1)} ms`} | ${r.httpErrors + r.socketErrors} |`;
  const mode = workers === undefined ? '1 process' : `--workers ${workers}`;
  const scrapeText = scraped.map((s) => `${(s.ms / 1000).toFixed(2)} s`).join(', ');
  const text = `- Gantry (${mode}, unpinned) on ${routes.toLocaleString('en-US')} routes, each hit once; ${paced.label}, ${rate} req/s over 10 connections on one route, ${seconds} s per run
- ${scrapes} scrapes of ${(scraped[0]!.bytes / 2 ** 20).toFixed(1)} MiB during the second run took ${scrapeText}

| load on /r1 | p50 | p99 | slowest | failed |
|---|---:|---:|---:|---:|
${row('no scrape', quiet)}
${row(`${scrapes} scrapes`, busy)}
`;
  process.stdout.write(`\n${text}`);
  if (!values['no-write']) {
    appendResults(`\n## ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · /metrics scrape stall (\`npm run bench:scrape\`)\n\n${env.lines.join('\n')}\n${text}`);
  }
  return quiet.httpErrors + quiet.socketErrors + busy.httpErrors + busy.socketErrors === 0 ? 0 : 1;
}

runCapacityBench('metrics-scrape-stall', main);
