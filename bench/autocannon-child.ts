/**
 * Runs autocannon in its own process (so it can be pinned to a CPU like wrk) and prints one result line.
 *
 *   node dist/bench/autocannon-child.js URL CONNECTIONS DURATION_S [REQUEST_SHAPE_JSON]
 *
 * autocannon's own percentiles come from a histogram of whole milliseconds, too coarse for a sub-millisecond
 * upstream, so the latency of every 2xx response is kept here (fractional ms) and the percentiles computed from that.
 */
import autocannon from 'autocannon';
import { RESULT_MARK, type RequestShape } from './load-generator.js';
import { percentile } from './stats.js';

const [url, connections, duration, shape] = process.argv.slice(2);
if (!url || !connections || !duration) throw new Error('usage: autocannon-child URL CONNECTIONS DURATION_S [REQUEST_SHAPE_JSON]');
const request: RequestShape = shape ? (JSON.parse(shape) as RequestShape) : { method: 'GET', headers: {}, body: '' };

let latencies = new Float64Array(1 << 18);
let count = 0;
const instance = autocannon({
  url, connections: Number(connections), duration: Number(duration), pipelining: 1, timeout: 5,
  method: request.method, headers: { ...request.headers }, ...(request.body ? { body: request.body } : {}),
}, (err, result) => {
  if (err) throw err;
  const sorted = latencies.subarray(0, count).sort();
  const line = {
    requests: result.requests.total,
    durationS: result.duration,
    rps: result.requests.total / result.duration,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    httpErrors: result.non2xx,
    socketErrors: result.errors,
  };
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(line)}\n`);
});
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  if (statusCode < 200 || statusCode > 299) return;
  if (count === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[count++] = responseTime;
});
