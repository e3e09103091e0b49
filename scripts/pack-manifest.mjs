// `npm pack` / `npm publish` around the tarball: `strip` (prepack) takes the `prepare` script out of package.json and
// `restore` (postpack) puts the file back. Why: `prepare` builds dist/ when Gantry is installed from a git URL, but
// in a tarball there is nothing to build, and npm would still list it as an install script a user must approve.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const FILE = new URL('../package.json', import.meta.url);
const SAVED = new URL('../package.json.packing', import.meta.url);

if (process.argv[2] === 'strip') {
  const text = readFileSync(FILE, 'utf8');
  if (!existsSync(SAVED)) writeFileSync(SAVED, text);
  const pkg = JSON.parse(text);
  delete pkg.scripts.prepare;
  writeFileSync(FILE, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (process.argv[2] === 'restore') {
  if (existsSync(SAVED)) renameSync(SAVED, FILE);
} else {
  process.stderr.write('usage: node scripts/pack-manifest.mjs strip|restore\n');
  process.exitCode = 1;
}
