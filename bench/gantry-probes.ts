import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { Child } from './processes.js';

/**
 * The pid of the node process (this runner's executable) in a child's process group with `marker` in its arguments. ProcessGroup runs
 * children behind `timeout` (and `taskset`), so the group leader is not the process to measure or to signal.
 */
export function pidInGroup(child: Child, marker: string): number {
  const pgid = child.proc.pid;
  if (pgid === undefined) throw new Error(`${child.name} has no pid`);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgrp !== pgid) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0] === process.execPath && argv.some((a) => a.includes(marker))) return Number(entry);
    } catch { /* gone meanwhile */ }
  }
  throw new Error(`no process with "${marker}" in ${child.name}'s process group ${pgid}`);
}

/** Resident set size (VmRSS) of a process, in bytes, from /proc/PID/status. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** How many file descriptors a process has open (sockets included). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The soft and hard limits on open files of this process (from /proc/self/limits); null where it is not readable. */
export function openFileLimits(): { soft: number; hard: number } | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return null;
    const n = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return null;
  }
}

/** Memory figures a Gantry admin listener exports (prom-client's process and Node.js metrics), in bytes. */
export interface ExportedMemory {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
}

export function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
        if (res.statusCode === 200) resolve(body); else reject(new Error(`GET ${url}: ${res.statusCode}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** One scrape of /metrics on the admin port; `value(name)` reads an unlabelled sample. */
async function scrape(adminPort: number): Promise<(name: string) => number> {
  const text = await get(`http://127.0.0.1:${adminPort}/metrics`);
  return (name) => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`/metrics has no ${name}`);
    return Number(m[1]);
  };
}

export async function exportedMemory(adminPort: number): Promise<ExportedMemory> {
  const value = await scrape(adminPort);
  return {
    rssBytes: value('process_resident_memory_bytes'),
    heapUsedBytes: value('nodejs_heap_size_used_bytes'),
    heapTotalBytes: value('nodejs_heap_size_total_bytes'),
    externalBytes: value('nodejs_external_memory_bytes'),
  };
}

/**
 * The longest event-loop gap since the previous scrape, minus prom-client's 10 ms sampling period (its histogram is
 * reset by every scrape): scrape once to start a window, again to read it.
 */
export async function loopLagMaxMs(adminPort: number): Promise<number> {
  const value = await scrape(adminPort);
  return Math.max(0, value('nodejs_eventloop_lag_max_seconds') * 1000 - 10);
}

export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
