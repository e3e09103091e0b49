import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Writes `dir/name`, an executable Node script that acts as a kubeconfig exec credential plugin
 * (client.authentication.k8s.io/v1): it checks KUBERNETES_EXEC_INFO, appends a line to `dir/name.runs`, and prints
 * an ExecCredential with the token in $TEST_TOKEN, expiring at $TEST_EXPIRY (an RFC 3339 time) when set. With
 * $TEST_FAIL it writes that to stderr and exits 1, as a cloud CLI does when its login expired.
 */
export async function writeExecCredentialScript(dir: string, name: string): Promise<{ runs(): Promise<number> }> {
  const file = join(dir, name);
  await writeFile(file, `#!${process.execPath}
const fs = require('node:fs');
const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO || '{}');
if (info.kind !== 'ExecCredential' || info.apiVersion !== 'client.authentication.k8s.io/v1' || info.spec?.interactive !== false) {
  process.stderr.write('bad KUBERNETES_EXEC_INFO: ' + process.env.KUBERNETES_EXEC_INFO);
  process.exit(2);
}
fs.appendFileSync(${JSON.stringify(`${file}.runs`)}, (info.spec.cluster?.server ?? '-') + '\\n');
if (process.env.TEST_FAIL) { process.stderr.write(process.env.TEST_FAIL); process.exit(1); }
const status = { token: process.env.TEST_TOKEN };
if (process.env.TEST_EXPIRY) status.expirationTimestamp = process.env.TEST_EXPIRY;
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }));
`);
  await chmod(file, 0o755);
  return {
    runs: async () => {
      try { return (await readFile(`${file}.runs`, 'utf8')).split('\n').filter(Boolean).length; } catch { return 0; }
    },
  };
}
