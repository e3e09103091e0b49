import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { canonicalAddress } from '../../gateway/plugin-api/index.js';
import { keepRegistered } from './etcd-register.js';

export const REGISTER_HELP = `gantry register: keep an endpoint registered in etcd while it lives

Usage:
  gantry register --service NAME --address URL [options] [-- COMMAND ARGS...]

Puts /gantry/services/NAME/HOST:PORT (or PREFIX/ID) under an etcd lease kept alive every TTL/3. If this process
dies, the key goes when the lease expires; on SIGTERM/SIGINT it is revoked at once. With a COMMAND, the command is
run and the endpoint is registered while it runs; on SIGTERM/SIGINT the endpoint is deregistered first, then the
signal is passed on, so the gateway stops sending before the service stops.

Options:
  --service NAME       the gateway's service name (the default prefix is /gantry/services/NAME/)
  --address URL        the endpoint, e.g. http://10.0.0.5:8000
  --prefix PREFIX      the key prefix instead (ends with /)
  --id ID              the key's last segment (default: HOST:PORT of the address)
  --weight N           1-1000 (default 1)
  --meta KEY=VALUE     metadata, repeatable
  --ttl SECONDS        lease TTL (default 10; etcd may raise very low values)
  --etcd URL           etcd client URL, repeatable (default http://127.0.0.1:2379)
  --etcd-user USER     with the password in $ETCD_PASSWORD
  --etcd-ca FILE, --etcd-cert FILE, --etcd-key FILE   TLS
`;

class UsageError extends Error {}

function parse(argv: string[]) {
  const dashes = argv.indexOf('--');
  const own = dashes < 0 ? argv : argv.slice(0, dashes);
  const command = dashes < 0 ? [] : argv.slice(dashes + 1);
  const { values } = parseArgs({
    args: own, strict: true, allowPositionals: false,
    options: {
      service: { type: 'string' }, address: { type: 'string' }, prefix: { type: 'string' }, id: { type: 'string' },
      weight: { type: 'string' }, meta: { type: 'string', multiple: true }, ttl: { type: 'string' },
      etcd: { type: 'string', multiple: true }, 'etcd-user': { type: 'string' },
      'etcd-ca': { type: 'string' }, 'etcd-cert': { type: 'string' }, 'etcd-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  if (!values.address) throw new UsageError('--address is required');
  if (!values.service && !values.prefix) throw new UsageError('--service (or --prefix) is required');
  if (values.prefix !== undefined && !values.prefix.endsWith('/')) throw new UsageError('--prefix must end with "/"');
  const address = canonicalAddress(values.address);
  const weight = Number(values.weight ?? 1);
  if (!Number.isInteger(weight) || weight < 1 || weight > 1000) throw new UsageError('--weight must be an integer from 1 to 1000');
  const ttlS = Number(values.ttl ?? 10);
  if (!Number.isInteger(ttlS) || ttlS < 1) throw new UsageError('--ttl must be a whole number of seconds, at least 1');
  const metadata: Record<string, string> = {};
  for (const m of values.meta ?? []) {
    const at = m.indexOf('=');
    if (at < 1) throw new UsageError(`--meta ${m}: expected KEY=VALUE`);
    metadata[m.slice(0, at)] = m.slice(at + 1);
  }
  if (Boolean(values['etcd-cert']) !== Boolean(values['etcd-key'])) throw new UsageError('--etcd-cert and --etcd-key go together');
  const tls = values['etcd-ca'] || values['etcd-cert']
    ? { caFile: values['etcd-ca'], certFile: values['etcd-cert'], keyFile: values['etcd-key'] } : undefined;
  const user = values['etcd-user'];
  return {
    command,
    options: {
      service: values.service ?? '', prefix: values.prefix, id: values.id, ttlS,
      endpoint: Object.keys(metadata).length ? { address, weight, metadata } : { address, weight },
      hosts: values.etcd ?? ['http://127.0.0.1:2379'],
      auth: user ? { username: user, password: process.env.ETCD_PASSWORD ?? '' } : undefined,
      tls, dialTimeoutMs: 3000, requestTimeoutMs: 5000,
    },
  };
}

/**
 * `gantry register`: resolves with the exit code once deregistered (and the command, if any, has exited).
 * `createLog` makes the gateway's logger (the CLI's), made only once the arguments are known good.
 */
export async function runRegister(argv: string[], createLog: () => Logger): Promise<number> {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`gantry register: ${(err as Error).message}\n\n${REGISTER_HELP}`);
    return 1;
  }
  if (!parsed) { process.stdout.write(REGISTER_HELP); return 0; }
  const log = createLog();
  const stop = new AbortController();
  const registration = keepRegistered(parsed.options, stop.signal, log);
  let exitCode = 0;

  if (parsed.command.length) {
    const [file, ...args] = parsed.command as [string, ...string[]];
    const child = spawn(file, args, { stdio: 'inherit' });
    const childExit = new Promise<number>((resolve) => {
      child.once('error', (err) => { log.error({ err: err.message }, `cannot run ${file}`); resolve(127); });
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15)));
    });
    const forward = (signal: NodeJS.Signals) => {
      // Deregister first: the gateway stops sending before the service starts to shut down.
      stop.abort();
      void registration.finally(() => child.kill(signal));
    };
    process.once('SIGTERM', () => forward('SIGTERM'));
    process.once('SIGINT', () => forward('SIGINT'));
    exitCode = await childExit;
    stop.abort();
  } else {
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    stop.abort();
  }
  await registration;
  log.flush();
  return exitCode;
}
