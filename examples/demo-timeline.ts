import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * `node dist/examples/demo-timeline.js`: runs `npm run demo:load`'s driver (examples/demo-load.ts) against the demo
 * gateway and watches the gateway's admin API meanwhile, then prints when the echo service's first extra instance was
 * asked for and listed ready after the load started, the peak, and when the first instance stopped and the service was
 * back to 1 after the load stopped: the figures README.md and docs/scaling.md quote. Start the gateway first
 * (`npm start`); the service must be at 1 instance.
 *
 *   node dist/examples/demo-timeline.js
 *   GANTRY_URL=http://127.0.0.1:8080 GANTRY_ADMIN=http://127.0.0.1:9901 SERVICE=echo node dist/examples/demo-timeline.js
 */
const base = process.env.GANTRY_URL ?? 'http://127.0.0.1:8080';
const admin = process.env.GANTRY_ADMIN ?? 'http://127.0.0.1:9901';
const service = process.env.SERVICE ?? 'echo';
const POLL_MS = 250;
/** Long enough for the 60 s stable window and a 300 s scale-down stabilization after the load. */
const GIVE_UP_AFTER_STOP_S = 420;

interface Sample { readonly desired: number; readonly ready: number }

async function sample(signal: AbortSignal): Promise<Sample> {
  const [scaling, services] = await Promise.all([
    fetch(`${admin}/admin/scaling`, { signal }).then((r) => r.json() as Promise<{ services: { service: string; desired: number }[] }>),
    fetch(`${admin}/admin/services`, { signal }).then((r) => r.json() as Promise<{ services: { name: string; endpoints: unknown[] }[] }>),
  ]);
  const desired = scaling.services.find((s) => s.service === service)?.desired;
  const ready = services.services.find((s) => s.name === service)?.endpoints.length;
  if (desired === undefined || ready === undefined) throw new Error(`service ${service} is not scaled by the gateway at ${admin}`);
  return { desired, ready };
}

const first = await sample(AbortSignal.timeout(2000)).catch((err: Error) => {
  process.stderr.write(`no admin API answering at ${admin} (${err.message}): start the gateway first with \`npm start\`\n`);
  process.exit(1);
});
if (first.desired !== 1 || first.ready !== 1) {
  process.stderr.write(`${service} has ${first.desired} instances asked for and ${first.ready} ready: wait until it is back to 1\n`);
  process.exit(1);
}

let loadStartedAt: number | null = null;
let loadStoppedAt: number | null = null;
const child = spawn(process.execPath, [fileURLToPath(new URL('./demo-load.js', import.meta.url))], {
  env: { ...process.env, GANTRY_URL: base }, stdio: ['ignore', 'pipe', 'inherit'],
});
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk: string) => {
  process.stdout.write(chunk);
  if (loadStartedAt === null && chunk.includes('driving load')) loadStartedAt = performance.now();
  if (loadStoppedAt === null && chunk.includes('load stopped')) loadStoppedAt = performance.now();
});
const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));

const since = (from: number | null) => (from === null ? NaN : (performance.now() - from) / 1000);
const times = { askedS: NaN, readyS: NaN, peak: 1, peakReadyS: NaN, firstStopS: NaN, backToOneS: NaN };
let previousDesired = 1;
for (;;) {
  await new Promise((r) => setTimeout(r, POLL_MS));
  const s = await sample(AbortSignal.timeout(2000));
  if (loadStoppedAt === null) {
    if (loadStartedAt === null) continue;
    if (Number.isNaN(times.askedS) && s.desired > 1) times.askedS = since(loadStartedAt);
    if (Number.isNaN(times.readyS) && s.ready > 1) times.readyS = since(loadStartedAt);
    if (s.ready > times.peak) { times.peak = s.ready; times.peakReadyS = since(loadStartedAt); }
  } else {
    if (Number.isNaN(times.firstStopS) && s.desired < previousDesired) times.firstStopS = since(loadStoppedAt);
    if (s.desired === 1 && s.ready === 1) { times.backToOneS = since(loadStoppedAt); break; }
    if (since(loadStoppedAt) > GIVE_UP_AFTER_STOP_S) break;
  }
  previousDesired = s.desired;
}
const code = await exited;
const f = (s: number) => (Number.isNaN(s) ? '—' : `${s.toFixed(1)} s`);
process.stdout.write(`\n${service}: after the load started, a 2nd instance asked for at ${f(times.askedS)}, ready at ${f(times.readyS)}; ` +
  `peak ${times.peak} ready at ${f(times.peakReadyS)}. After it stopped, the first instance stopped at ${f(times.firstStopS)}, ` +
  `back to 1 at ${f(times.backToOneS)}\n`);
process.exitCode = code === 0 && !Number.isNaN(times.backToOneS) ? 0 : 1;
