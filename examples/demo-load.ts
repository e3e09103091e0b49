import http from 'node:http';

/**
 * `npm run demo:load`: drives load through the demo gateway so it scales its echo instances up and back down.
 * Workers each keep one request in flight against /echo/...?delay=100 (100 ms of "work" per request); the count of
 * workers ramps from 2 to 24 and holds, then stops. Every 2 s it prints the request rate, latency and how many
 * instances answered (their x-instance header). The gateway's own log shows each decision (`"event":"scaled"`).
 *
 *   npm run demo:load                      # against http://127.0.0.1:8080
 *   GANTRY_URL=http://host:port npm run demo:load
 */
const base = process.env.GANTRY_URL ?? 'http://127.0.0.1:8080';
const target = new URL('/echo/work?delay=100', base);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

const phases: { untilS: number; workers: (t: number) => number; label: string }[] = [
  { untilS: 10, workers: () => 2, label: 'light load (2 in flight)' },
  { untilS: 40, workers: (t) => Math.round(2 + (22 * (t - 10)) / 30), label: 'ramping to 24 in flight' },
  { untilS: 60, workers: () => 24, label: 'holding 24 in flight' },
];

let active = 0;
let wanted = 0;
let done = 0;
let failed = 0;
let latencies: number[] = [];
let instances = new Set<string>();

function one(): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.get(target, { agent }, (res) => {
      const instance = res.headers['x-instance'];
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) { done++; latencies.push(performance.now() - started); } else failed++;
        if (typeof instance === 'string') instances.add(instance);
        resolve();
      });
    });
    req.on('error', () => { failed++; setTimeout(resolve, 200); });
  });
}

async function worker(id: number): Promise<void> {
  active++;
  while (id < wanted) await one();
  active--;
}

function report(elapsedS: number, label: string): void {
  latencies.sort((a, b) => a - b);
  const p50 = latencies[Math.floor(latencies.length * 0.5)] ?? 0;
  const p95 = latencies[Math.floor(latencies.length * 0.95)] ?? 0;
  process.stdout.write(`${String(elapsedS).padStart(3)} s  ${label.padEnd(26)} in flight ${String(active).padStart(2)}  ${String(Math.round(done / 2)).padStart(4)} req/s  p50 ${p50.toFixed(0).padStart(4)} ms  p95 ${p95.toFixed(0).padStart(4)} ms  instances answering ${instances.size}${failed ? `  failed ${failed}` : ''}\n`);
  done = 0;
  failed = 0;
  latencies = [];
  instances = new Set();
}

const probe = await new Promise<boolean>((resolve) => {
  http.get(new URL('/echo/hello', base), (res) => { res.resume(); resolve(res.statusCode === 200); }).on('error', () => resolve(false));
});
if (!probe) {
  process.stderr.write(`no gateway answering at ${base}/echo/hello: start it first with \`npm start\`\n`);
  process.exit(1);
}
process.stdout.write(`driving load at ${target.href} for 60 s; watch the gateway's log for "scaled" lines\n`);
const start = Date.now();
let lastReport = start;
for (const phase of phases) {
  while ((Date.now() - start) / 1000 < phase.untilS) {
    const t = (Date.now() - start) / 1000;
    const next = phase.workers(t);
    const from = wanted;
    wanted = next;
    for (let id = from; id < next; id++) void worker(id);
    await new Promise((r) => setTimeout(r, 250));
    if (Date.now() - lastReport >= 2000) {
      lastReport = Date.now();
      report(Math.round((Date.now() - start) / 1000), phase.label);
    }
  }
}
wanted = 0;
while (active > 0) await new Promise((r) => setTimeout(r, 50));
process.stdout.write('load stopped. The gateway stops the instances one by one from about 32-50 s from now, back to 1 about 78 s from now\n(the 60 s stable window forgets the load, then the scaleDown.stabilizationWindowMs of routes.yaml)\n');
process.stdout.write('and its log says why (each "event":"scaled" line has its "cause"). Run `npm run demo:load` again to watch it scale up once more.\n');
agent.destroy();
