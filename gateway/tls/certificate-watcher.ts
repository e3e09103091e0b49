import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

/** After the last change in a burst, how long to wait before reading (a pair written one file after the other). */
export const SETTLE_MS = 200;
/** A burst that never pauses is read after this long all the same. */
export const MAX_WAIT_MS = 1000;
/** A directory that cannot be watched (gone, not yet there) is tried again this often. */
const REWATCH_MS = 1000;

/**
 * Calls `changed` once a burst of changes in the directories of `files` has settled. It watches directories, not
 * files: Kubernetes secrets and cert-manager swap a `..data` symlink beside the files, and certbot repoints the
 * symlinks in its `live/` directory, so the file names given never change themselves. Any change in a watched
 * directory counts; the caller compares what it reads with what it serves.
 */
export class CertificateWatcher {
  readonly #watchers = new Map<string, FSWatcher | null>();
  #settle: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #rewatch: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(private readonly changed: () => void, private readonly onError: (dir: string, err: Error) => void) {}

  /** Watches the directories of `files` (and stops watching the others). */
  watch(files: readonly string[]): void {
    const dirs = new Set(files.map((f) => dirname(f)));
    for (const [dir, watcher] of this.#watchers) {
      if (!dirs.has(dir)) { watcher?.close(); this.#watchers.delete(dir); }
    }
    for (const dir of dirs) if (!this.#watchers.get(dir)) this.#open(dir);
  }

  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers.values()) watcher?.close();
    this.#watchers.clear();
    clearTimeout(this.#settle);
    clearTimeout(this.#deadline);
    clearTimeout(this.#rewatch);
  }

  #open(dir: string): void {
    try {
      const watcher = watch(dir, { persistent: false }, () => this.#touched());
      watcher.on('error', (err) => {
        watcher.close();
        this.#lost(dir, err);
      });
      this.#watchers.set(dir, watcher);
    } catch (err) {
      this.#lost(dir, err as Error);
    }
  }

  /** A directory that went away may come back (a volume remounted): watched again when it does, and read then. */
  #lost(dir: string, err: Error): void {
    if (this.#closed) return;
    const known = this.#watchers.get(dir) !== null;
    this.#watchers.set(dir, null);
    if (known) this.onError(dir, err);
    this.#rewatch ??= setTimeout(() => {
      this.#rewatch = undefined;
      for (const [d, w] of this.#watchers) {
        if (w !== null) continue;
        this.#open(d);
        if (this.#watchers.get(d)) this.#touched();
      }
    }, REWATCH_MS).unref();
  }

  #touched(): void {
    if (this.#closed) return;
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => this.#fire(), SETTLE_MS).unref();
    this.#deadline ??= setTimeout(() => this.#fire(), MAX_WAIT_MS).unref();
  }

  #fire(): void {
    clearTimeout(this.#settle);
    clearTimeout(this.#deadline);
    this.#settle = undefined;
    this.#deadline = undefined;
    this.changed();
  }
}
