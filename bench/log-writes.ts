/**
 * What writing one access-log line costs, in CPU nanoseconds (main thread and thread pool together, as a proxy pinned
 * to one core pays them), for the ways pino's destination (sonic-boom) can be fed:
 *   - a write per line to an asynchronous destination (Gantry before: sonic-boom batches only while a write is in flight),
 *   - one write per event-loop turn to an asynchronous destination,
 *   - one write per turn to a synchronous destination (Gantry now, for a log file: gateway/logger.ts).
 * Each turn carries `--lines` lines (12: what a write carried at 10 000 req/s in the gateway, strace).
 *
 *   npm run build && node dist/bench/log-writes.js [--lines 12] [--no-write]
 */
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { appendResults, environmentLines } from './capacity-run.js';

const LINE = '{"level":"info","time":"2026-11-26T00:40:00.000Z","log":"access","reqId":"c0a80101-1234-4abc-9def-0123456789ab","method":"GET","host":"127.0.0.1","path":"/bench","route":"bench","service":"upstream","endpoint":"http://127.0.0.1:40000","status":200,"durationMs":0.41,"bytes":100,"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","msg":"request"}\n';
const TURNS = 30_000;

interface Mode { readonly name: string; readonly sync: boolean; readonly batched: boolean }
const MODES: Mode[] = [
  { name: 'async destination, a write per line', sync: false, batched: false },
  { name: 'async destination, a write per turn', sync: false, batched: true },
  { name: 'sync destination, a write per turn (Gantry)', sync: true, batched: true },
];

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

async function measure(mode: Mode, file: string, lines: number): Promise<number> {
  const stream = pino.destination({ dest: openSync(file, 'a'), sync: mode.sync });
  const batch = LINE.repeat(lines);
  const run = async (turns: number) => {
    const cpu = process.cpuUsage();
    for (let t = 0; t < turns; t++) {
      if (mode.batched) stream.write(batch);
      else for (let k = 0; k < lines; k++) stream.write(LINE);
      await nextTurn();
    }
    const used = process.cpuUsage(cpu);
    return ((used.user + used.system) * 1000) / (turns * lines);
  };
  await run(TURNS / 10);   // warm-up
  const ns = await run(TURNS);
  await new Promise((resolve) => { stream.once('close', resolve); stream.end(); });
  return ns;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { lines: { type: 'string', default: '12' }, 'no-write': { type: 'boolean' } } });
  const lines = Number(values.lines);
  const dir = mkdtempSync(join(tmpdir(), 'gantry-log-writes-'));
  try {
    const env = await environmentLines();
    const rows: string[] = [];
    // Interleaved rounds, median per mode: the machine's neighbours move single runs by 10-20 %.
    const results = new Map<string, number[]>(MODES.map((m) => [m.name, []]));
    for (let round = 0; round < 3; round++) {
      for (const mode of MODES) results.get(mode.name)!.push(await measure(mode, join(dir, 'access.log'), lines));
    }
    for (const mode of MODES) {
      const ns = results.get(mode.name)!.sort((a, b) => a - b)[1]!;
      rows.push(`| ${mode.name} | ${Math.round(ns)} |`);
      process.stdout.write(`${mode.name.padEnd(48)} ${Math.round(ns).toString().padStart(6)} ns of CPU per line\n`);
    }
    if (!values['no-write']) {
      const where = appendResults(`## Access log writes (\`node dist/bench/log-writes.js\`), ${new Date().toISOString()}\n\n${env.lines.join('\n')}\n\n${lines} lines of ${LINE.length} bytes per event-loop turn, to a file; CPU of the process (main thread and thread pool) per line, median of 3 interleaved rounds of ${TURNS} turns.\n\n| how | ns of CPU per line |\n|---|---|\n${rows.join('\n')}\n`);
      process.stdout.write(`written to ${where}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
