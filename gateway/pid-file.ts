import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';

/**
 * Writes this process's pid to `path` and removes the file when the process exits (a SIGKILL leaves it, as with
 * every pid file). It is the pid to signal: `kill -HUP $(cat PATH)` reloads, `-TERM` drains, `-USR2` reopens the
 * log file, also when Gantry was started through `npx` or `npm start`, whose own pid does not pass SIGHUP or
 * SIGUSR2 on (docs/production.md). A path that cannot be written throws, so the caller can refuse to start.
 */
export function writePidFile(path: string): void {
  const text = `${process.pid}\n`;
  writeFileSync(path, text);
  process.once('exit', () => {
    // Another instance started with the same path since: the file is its own now.
    try { if (readFileSync(path, 'utf8') === text) unlinkSync(path); } catch { /* already gone */ }
  });
}
