/**
 * The parse worker (load-routes-file.ts starts one per load of a large file): parses and checks the text as far as it
 * can without plugins (check-routes-document.ts), and posts the result to the main thread: the routes in slices on
 * `slices` (a port the main thread pulls from, one slice per event-loop turn), then the rest on parentPort.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { checkRoutesDocument, type PhaseClock } from './check-routes-document.js';

/** What the worker posts on parentPort, once. */
export interface FromParseWorker {
  readonly document: unknown;
  readonly phasesMs: Record<string, number>;
}

export interface ParseWorkerData {
  readonly text: string;
  /** For the problems' file:line:col. */
  readonly file: string;
  /** Where the route slices go (transferred to the worker). */
  readonly slices: MessagePort;
}

// Measured on a 10 000-route file: deserializing all routes in one message took 28-70 ms of the main thread (on a
// busy 2-core machine); a 500-route slice 0.6-1 ms when quiet but 10-13 ms under traffic, plus 3-8 ms to freeze it
// (cpu profile of bench:reload); 100 routes keep each turn of the receive under about 5 ms.
const ROUTES_PER_SLICE = 100;

const port = parentPort!;
const { text, file, slices } = workerData as ParseWorkerData;
const phasesMs: Record<string, number> = {};
let last = performance.now();
const clock: PhaseClock = {
  lap(phase) { const now = performance.now(); this.record(phase, now - last); last = now; },
  record(phase, ms) { phasesMs[phase] = (phasesMs[phase] ?? 0) + ms; },
};

const document = checkRoutesDocument(text, file, clock);
// Posted before the answer: each slice is in the port's queue by the time the main thread reads the answer.
for (let i = 0; i < document.routes.length; i += ROUTES_PER_SLICE) slices.postMessage(document.routes.slice(i, i + ROUTES_PER_SLICE));
slices.close();
port.postMessage({ document: { ...document, routes: [] }, phasesMs } satisfies FromParseWorker);
