import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

/**
 * Writes this process's pid to `path` and removes the file when the process exits (a SIGKILL leaves it, as with
 * every pid file). It is the pid to signal: `kill -HUP $(cat PATH)` reloads, `-TERM` drains, `-USR2` reopens the
 * log file, also when Gantry was started through `npx` or `npm start`, whose own pid does not pass SIGHUP or
 * SIGUSR2 on (docs/production.md). A path that cannot be written throws, so the caller can refuse to start.
 * Written beside and renamed into place: a reader sees no file or the whole pid, never an empty file (the window
 * between a write's truncate and its data, which `kill -HUP $(cat PATH)` would meet).
 */
export function writePidFile(path: string): void {
  const text = `${process.pid}\n`;
  const partial = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(partial, text);
    renameSync(partial, path);
  } catch (err) {
    try { unlinkSync(partial); } catch { /* never written */ }
    throw err;
  }
  process.once('exit', () => {
    // Another instance started with the same path since: the file is its own now.
    try { if (readFileSync(path, 'utf8') === text) unlinkSync(path); } catch { /* already gone */ }
  });
}
