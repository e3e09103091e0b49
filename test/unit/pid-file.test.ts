import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writePidFile } from '../../gateway/pid-file.js';

t.test('a reader of the pid file never sees it empty while it is written (no window between truncate and data)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-pid-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gantry.pid');
  writeFileSync(path, 'previous\n');
  // Another process reads it in a loop, as `kill -HUP $(cat PATH)` would at any moment.
  const reader = spawn(process.execPath, ['-e', `
    const fs = require('fs'); let empty = 0, reads = 0; const end = Date.now() + 1200;
    while (Date.now() < end) { try { if (fs.readFileSync(process.argv[1], 'utf8') === '') empty++; reads++; } catch {} }
    process.stdout.write(JSON.stringify({ empty, reads }));`, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  const exited = new Promise((resolve) => reader.once('exit', resolve));
  t.teardown(() => { reader.kill(); });
  await new Promise((resolve) => setTimeout(resolve, 100));   // the reader's loop is running
  process.setMaxListeners(0);   // each write registers its removal at exit
  const end = Date.now() + 600;
  let writes = 0;
  while (Date.now() < end) { writePidFile(path); writes++; }
  await exited;
  const seen = JSON.parse(out) as { empty: number; reads: number };
  t.ok(seen.reads > 100 && writes > 100, `the reader read ${seen.reads} times during ${writes} writes`);
  t.equal(seen.empty, 0, 'never an empty file');
});
