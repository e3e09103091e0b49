// The config-reloader sidecar of deploy/kubernetes/gantry.yaml: when the mounted routes file changes (the kubelet
// swaps a ConfigMap volume's files some time after the ConfigMap changed), it asks the gateway in the same pod to
// reload it with POST /admin/reload (docs/admin-api.md). A refused file keeps the old config serving; the answer is
// logged either way. Usage: node reload-on-change.mjs FILE ADMIN_URL (the token from $GANTRY_ADMIN_TOKEN).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

const [file, adminUrl] = process.argv.slice(2);
const everyMs = Number(process.env.RELOAD_CHECK_MS ?? 5000);
if (!file || !adminUrl) {
  process.stderr.write('usage: node reload-on-change.mjs FILE ADMIN_URL\n');
  process.exit(2);
}
const hashOf = async () => createHash('sha256').update(await readFile(file)).digest('hex');
const headers = process.env.GANTRY_ADMIN_TOKEN ? { authorization: `Bearer ${process.env.GANTRY_ADMIN_TOKEN}` } : {};
process.once('SIGTERM', () => process.exit(0));

const log = (fields) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);

let seen = await hashOf();
log({ event: 'watching', file, everyMs });
for (;;) {
  await sleep(everyMs);
  const now = await hashOf().catch(() => seen);   // mid-swap: look again next time
  if (now === seen) continue;
  try {
    const res = await fetch(new URL('/admin/reload', adminUrl), { method: 'POST', headers, signal: AbortSignal.timeout(30_000) });
    log({ event: 'config-changed', status: res.status, answer: await res.json() });
    seen = now;
  } catch (err) {
    log({ event: 'reload-request-failed', err: err.message });
  }
}
