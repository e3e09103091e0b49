import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc's CPU times: `getconf CLK_TCK`, 100 on every mainstream Linux. */
let ticksPerSecond: Promise<number> | undefined;

function clockTicks(): Promise<number> {
  ticksPerSecond ??= new Promise((resolve) => {
    execFile('getconf', ['CLK_TCK'], { timeout: 2000 }, (err, out) => {
      const n = Number(String(out).trim());
      resolve(!err && n > 0 ? n : 100);
    });
  });
  return ticksPerSecond;
}

export interface CpuSample {
  /** CPU seconds used so far (user + system). */
  readonly cpuSeconds: number;
  /** Resident memory in bytes. */
  readonly rssBytes: number;
}

/**
 * CPU time and resident memory of a process, from /proc (Linux). Null when unavailable (another OS, or the process
 * is gone): the scaling policy then treats the signal as missing, which never causes a scale-down.
 */
export async function sampleProcess(pid: number): Promise<CpuSample | null> {
  try {
    const [stat, status, hz] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8'), clockTicks()]);
    // The command name (field 2) may hold spaces and parentheses: count fields from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!Number.isFinite(utime) || !Number.isFinite(stime) || !rss) return null;
    return { cpuSeconds: (utime + stime) / hz, rssBytes: Number(rss[1]) * 1024 };
  } catch {
    return null;
  }
}
