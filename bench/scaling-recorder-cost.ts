/**
 * The load recorder's cost per request on the hot path: one `started` and one `finished` call (what the request
 * handler adds per request), timed over a million requests after warm-up, with the heap growth alongside.
 *
 *   npm run build && node dist/bench/scaling-recorder-cost.js
 */
import { LoadRecorder } from '../gateway/load/load-recorder.js';

const recorder = new LoadRecorder();
recorder.configure('svc', 60_000);
const N = 1_000_000;
const rounds: string[] = [];
for (let round = 0; round < 6; round++) {
  const heap = process.memoryUsage().heapUsed;
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    recorder.started('svc');
    recorder.finished('svc', i % 400, i % 50 === 0);
  }
  const ns = Number(process.hrtime.bigint() - started) / N;
  const grown = process.memoryUsage().heapUsed - heap;
  if (round > 0) rounds.push(`${ns.toFixed(0)} ns/request, heap ${grown >= 0 ? '+' : ''}${(grown / N).toFixed(2)} B/request`);
}
process.stdout.write(`load recorder, started + finished per request (5 rounds of ${N} after a warm-up round):\n${rounds.join('\n')}\n`);
