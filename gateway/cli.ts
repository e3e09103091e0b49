#!/usr/bin/env node
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { runRegister } from '../plugins/discovery/etcd-register-command.js';
import { createBuiltinRegistry } from '../plugins/index.js';
import { runPrimary, workerCount } from './cluster/primary.js';
import { runWorker } from './cluster/worker.js';
import { loadRoutesFile } from './config/load-routes-file.js';
import type { PluginRegistry } from './plugin-api/plugin-registry.js';
import { createGateway } from './create-gateway.js';
import { runFleetStatus } from './fleet/fleet-status-command.js';
import { formatProblem, isConfigError } from './errors.js';
import { holdSignals } from './held-signals.js';
import { createLogger } from './logger.js';
import { writePidFile } from './pid-file.js';
import { CLOSE_SLACK_MS, drainThenExit, exitOnFatalError } from './process-exit.js';
import { gantryVersion } from './version.js';

const HELP = `gantry: an edge reverse proxy and API gateway

Usage:
  gantry start    [-c routes.yaml] [--workers N|auto] [--pid-file FILE]
                                     run the gateway (SIGHUP reloads the file, SIGTERM drains and exits);
                                     with --workers, N processes share the port and reload together
  gantry validate [-c routes.yaml]   check the file; print every problem as file:line:col and exit 1 if any
  gantry fleet status [-c routes.yaml] [--json]
                                     the fleet of the file's fleet: block, read from etcd: its gateways, the leader,
                                     their config versions and load; exit 2 when their configs differ
  gantry register --service NAME --address URL [-- COMMAND]
                                     keep an endpoint registered in etcd under a lease (gantry register --help)
  gantry --help | --version

Options:
  -c, --config FILE   the routes file (default: $GANTRY_CONFIG or ./routes.yaml)
  --pid-file FILE     write the pid to signal there at start (removed at exit); the "started" log line has it too
`;

async function validate(file: string, plugins: PluginRegistry): Promise<number> {
  try {
    const config = await loadRoutesFile(file, plugins);
    process.stdout.write(`${file}: ok (${config.routes.length} routes, ${config.services.size} services)\n`);
    return 0;
  } catch (err) {
    if (!isConfigError(err)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write(`${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}\n`);
    return 1;
  }
}

async function fleetStatus(file: string, plugins: PluginRegistry, json: boolean): Promise<number> {
  try {
    return await runFleetStatus(file, plugins, json, (text) => process.stdout.write(text));
  } catch (err) {
    if (!isConfigError(err)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
}

async function start(file: string, plugins: PluginRegistry): Promise<void> {
  let gateway;
  try {
    gateway = await createGateway({ configFile: file, plugins });
  } catch (err) {
    if (isConfigError(err)) {
      for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
      process.exit(1);
    }
    throw err;
  }
  const g = gateway;
  process.on('SIGHUP', () => { void g.reload(); });
  process.on('SIGUSR2', () => g.reopenLog());   // logrotate: reopen the log file after it was renamed
  // The exit is explicit: everything is closed, and a timer a third-party plugin left behind must not keep it alive.
  const stop = drainThenExit(g.log, async () => ((await g.shutdown()).forced ? 1 : 0), () => g.current().config.server.drainGraceMs + CLOSE_SLACK_MS);
  process.once('SIGTERM', () => stop());
  process.once('SIGINT', () => stop());
  exitOnFatalError(g.log, stop);
}

export async function main(argv: string[]): Promise<number | undefined> {
  // register has options of its own; it parses them itself.
  if (argv[0] === 'register') return runRegister(argv.slice(1), () => createLogger('info'));
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      config: { type: 'string', short: 'c' }, workers: { type: 'string', short: 'w' },
      help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' }, 'pid-file': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.version) { process.stdout.write(`gantry ${gantryVersion()} (Node.js ${process.version})\n`); return 0; }
  const command = positionals[0];
  if (values.help || !command || command === 'help') { process.stdout.write(HELP); return values.help || command === 'help' ? 0 : 1; }
  const file = values.config ?? process.env.GANTRY_CONFIG ?? 'routes.yaml';
  // The composition root: the one place that names the built-in plugins; everything below takes the registry.
  const plugins = createBuiltinRegistry();
  if (command === 'validate') return validate(file, plugins);
  if (command === 'fleet' && positionals[1] === 'status') return fleetStatus(file, plugins, values.json === true);
  if (command === 'start') {
    if (cluster.isWorker) { await runWorker(file, plugins); return undefined; }
    const signals = holdSignals();
    const count = values.workers === undefined ? undefined : workerCount(values.workers);
    if (values['pid-file'] !== undefined) writePidFile(values['pid-file']);
    if (count !== undefined) await runPrimary(file, count, plugins);
    else await start(file, plugins);
    signals.release();
    return undefined;
  }
  process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => { if (code !== undefined) process.exitCode = code; },
  (err: Error) => { process.stderr.write(`gantry: ${err.message}\n`); process.exitCode = 1; },
);
