import { hostname } from 'node:os';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * A lock older than this is stale whoever holds it: longer than an order may take (acme-renewal.ts bounds one at
 * ORDER_TIMEOUT_MS), so its holder is stuck or gone.
 */
export const LOCK_STALE_MS = 15 * 60 * 1000;
/** A lock file without its content this long after it was made: its maker died between creating and writing it. */
const UNWRITTEN_STALE_MS = 10_000;

interface LockContent {
  readonly pid: number;
  readonly host: string;
  readonly at: number;
}

/** Who holds the lock now: the process and when it took it. */
export type LockHolder = LockContent;

/**
 * The order lock of a storage directory: a file made with O_EXCL holding the owner's pid, host and time, so that of
 * several gateways sharing the directory only one orders at a time (the others find the certificate stored after).
 * A lock is stale, and taken over, when its process is gone (same host, no such pid), when it is older than
 * LOCK_STALE_MS, or when it still has no content 10 s after it was made (a crash between creating and writing it).
 */
export class OrderLock {
  #held = false;

  constructor(readonly file: string, private readonly now: () => number = Date.now) {}

  /** Takes the lock; null when taken, else the live holder. */
  async acquire(): Promise<LockHolder | null> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    for (let tries = 0; tries < 3; tries++) {
      try {
        const handle = await open(this.file, 'wx', 0o600);
        try {
          await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), at: this.now() } satisfies LockContent));
        } finally {
          await handle.close();
        }
        this.#held = true;
        return null;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await this.#holder();
      if (holder === 'gone') continue;
      if (!this.#stale(holder)) return holder;
      // Two takers of one stale lock may both remove it; O_EXCL still lets only one of them create the next.
      await rm(this.file, { force: true });
    }
    const holder = await this.#holder();
    return holder === 'gone' ? { pid: 0, host: '', at: this.now() } : holder;
  }

  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await rm(this.file, { force: true });
  }

  /** The lock's content; one still unwritten as pid 0 at its file's time; 'gone' when there is no lock file. */
  async #holder(): Promise<LockContent | 'gone'> {
    let text: string;
    let madeAt: number;
    try {
      [text, madeAt] = await Promise.all([readFile(this.file, 'utf8'), stat(this.file).then((s) => s.mtimeMs)]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as Partial<LockContent>;
      if (typeof parsed.pid === 'number' && typeof parsed.at === 'number') return { pid: parsed.pid, host: String(parsed.host ?? ''), at: parsed.at };
    } catch { /* not written yet, or torn */ }
    return { pid: 0, host: '', at: madeAt };
  }

  #stale(holder: LockContent): boolean {
    const ageMs = this.now() - holder.at;
    if (holder.pid === 0) return ageMs > UNWRITTEN_STALE_MS;
    if (ageMs > LOCK_STALE_MS) return true;
    if (holder.host !== hostname()) return false;
    try {
      process.kill(holder.pid, 0);
      return false;
    } catch (err) {
      // EPERM: the process exists (another user's).
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}
