/**
 * A child process of bench/idle-connections.ts that holds many keep-alive client connections to Gantry: it opens
 * COUNT connections to 127.0.0.1:PORT (OPEN_CONCURRENCY at a time), sends one GET on each, reads the answer and keeps
 * the socket open. Commands arrive as JSON lines on stdin, reports leave as JSON lines on stdout:
 *
 *   → {"type":"traffic","rate":100,"sockets":500}   GETs at `rate` per second, in turn over the first `sockets` sockets
 *   → {"type":"report"}                             ← {"type":"report","open":…,"closedByPeer":…,"sent":…,"ok":…,…}
 *   ← {"type":"opened","open":…,"failed":…,"ms":…}  once, when every connection has been tried
 *
 *   node dist/bench/idle-clients.js PORT COUNT PATH
 * Raw sockets and a minimal response reader: an http.Agent per socket would cost this process far more than it costs
 * Gantry, and only Gantry's memory is being measured.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';

const [port, count, path] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? '/'];
const OPEN_CONCURRENCY = 200;
const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: idle.bench\r\n\r\n`);

interface Conn {
  readonly socket: net.Socket;
  /** Bytes of the answer read so far, until its head and body are complete. */
  pending: Buffer;
  /** Called with the status (or 0 on failure) when the answer in progress is complete. */
  waiting: ((status: number) => void) | null;
  closed: boolean;
  /** In `conns`: a close from now on is the server's doing (or a reset), and counts. */
  held: boolean;
}

const conns: Conn[] = [];
let closedByPeer = 0;

/** Feeds bytes to the connection's answer in progress; a Content-Length body is all the upstream sends. */
function onData(c: Conn, chunk: Buffer): void {
  c.pending = c.pending.length ? Buffer.concat([c.pending, chunk]) : chunk;
  const end = c.pending.indexOf('\r\n\r\n');
  if (end < 0) return;
  const head = c.pending.subarray(0, end).toString('latin1');
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  if (c.pending.length < end + 4 + length) return;
  c.pending = c.pending.subarray(end + 4 + length);
  const done = c.waiting;
  c.waiting = null;
  done?.(Number(head.slice(9, 12)));
}

function exchange(c: Conn): Promise<number> {
  return new Promise((resolve) => {
    if (c.closed) { resolve(0); return; }
    c.waiting = resolve;
    c.socket.write(request);
  });
}

function open(): Promise<Conn | null> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const c: Conn = { socket, pending: Buffer.alloc(0), waiting: null, closed: false, held: false };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => onData(c, chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (!c.closed && c.held) closedByPeer++;
      c.closed = true;
      c.waiting?.(0);
      c.waiting = null;
    });
    socket.once('connect', () => {
      void exchange(c).then((status) => resolve(status === 200 ? c : (socket.destroy(), null)));
    });
    socket.once('error', () => resolve(null));
  });
}

async function openAll(): Promise<void> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, async () => {
    while (next < count) {
      next++;
      const c = await open();
      if (c) { c.held = true; conns.push(c); } else failed++;
    }
  }));
  send({ type: 'opened', open: conns.length, failed, ms: Math.round(performance.now() - started) });
}

// Traffic during the soak: counters since the last report.
let sent = 0;
let ok = 0;
let failedRequests = 0;
let maxMs = 0;
let timer: NodeJS.Timeout | undefined;

function startTraffic(rate: number, sockets: number): void {
  clearInterval(timer);
  if (rate <= 0) return;
  const everyMs = Math.max(1, 1000 / rate);
  const perTick = Math.max(1, Math.round((rate * everyMs) / 1000));
  let turn = 0;
  timer = setInterval(() => {
    for (let k = 0; k < perTick; k++) {
      // The next open socket that is not waiting for an answer; a busy one is skipped, not queued behind.
      const limit = Math.min(sockets, conns.length);
      let c: Conn | undefined;
      for (let tries = 0; tries < limit && !c; tries++) {
        const candidate = conns[turn++ % limit]!;
        if (!candidate.closed && candidate.waiting === null) c = candidate;
      }
      if (!c) { failedRequests++; continue; }
      sent++;
      const t0 = performance.now();
      void exchange(c).then((status) => {
        if (status === 200) ok++; else failedRequests++;
        maxMs = Math.max(maxMs, performance.now() - t0);
      });
    }
  }, everyMs);
}

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line) as { type: string; rate?: number; sockets?: number };
  if (m.type === 'traffic') startTraffic(m.rate ?? 0, m.sockets ?? conns.length);
  if (m.type === 'report') {
    send({ type: 'report', open: conns.filter((c) => !c.closed).length, closedByPeer, sent, ok, failed: failedRequests, maxMs: Math.round(maxMs * 10) / 10 });
    sent = 0; ok = 0; failedRequests = 0; maxMs = 0;
  }
}).on('close', () => process.exit(0));

process.once('SIGTERM', () => process.exit(0));
await openAll();
