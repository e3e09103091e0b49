import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** Gantry's version from package.json (found from dist/gateway/ or, when run from source, gateway/). */
export function gantryVersion(): string {
  if (cached !== undefined) return cached;
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'gantry' && pkg.version) return (cached = pkg.version);
    } catch { /* try the next place */ }
  }
  return (cached = '0.0.0-unknown');
}
