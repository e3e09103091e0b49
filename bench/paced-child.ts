/**
 * A paced load generator: CONNECTIONS keep-alive connections, each sending one request every CONNECTIONS / RATE
 * seconds on a fixed schedule (staggered across connections), so the offered load is RATE req/s however fast the
 * answers come. It measures latency below saturation, which closed-loop tools (wrk, autocannon without a rate)
 * cannot, and autocannon's overallRate sends in bursts. Prints one result line like autocannon-child.
 *
 *   node dist/bench/paced-child.js URL CONNECTIONS DURATION_S REQUEST_SHAPE_JSON RATE_PER_S
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { RESULT_MARK, type RequestShape } from './load-generator.js';
import { percentile } from './stats.js';

const [url, connectionsArg, durationArg, shape, rateArg] = process.argv.slice(2);
if (!url || !connectionsArg || !durationArg || !shape || !rateArg) throw new Error('usage: paced-child URL CONNECTIONS DURATION_S REQUEST_SHAPE_JSON RATE_PER_S');
const connections = Number(connectionsArg);
const request = JSON.parse(shape) as RequestShape;
const periodMs = (connections * 1000) / Number(rateArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
const started = performance.now();
const endAt = started + Number(durationArg) * 1000;
const latencies: number[] = [];
let httpErrors = 0;
let socketErrors = 0;
let running = connections;

function finish(): void {
  if (--running > 0) return;
  const durationS = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  agent.destroy();
  process.stdout.write(`${RESULT_MARK}${JSON.stringify({
    requests: latencies.length + httpErrors, durationS, rps: (latencies.length + httpErrors) / durationS,
    p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), httpErrors, socketErrors,
  })}\n`);
}

/** One connection's schedule: a request at `at`, the next one period later (at once if it is already late). */
function send(at: number): void {
  if (at >= endAt) { finish(); return; }
  const t0 = performance.now();
  const next = () => { const wait = at + periodMs - performance.now(); setTimeout(send, Math.max(0, wait), at + periodMs); };
  const req = http.request(url as string, { agent, method: request.method, headers: request.headers }, (res) => {
    res.resume();
    res.once('end', () => {
      if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) latencies.push(performance.now() - t0);
      else httpErrors++;
      next();
    });
  });
  req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  req.once('error', () => { socketErrors++; next(); });
  req.end(request.body || undefined);
}

for (let c = 0; c < connections; c++) {
  const at = started + (c * periodMs) / connections;
  setTimeout(send, at - performance.now(), at);
}
