import { statSync } from 'node:fs';
import { countAccessLines, probe, startGantry } from '../targets.js';
import type { System } from './system.js';

/**
 * Gantry as a user runs it: `node dist/gateway/cli.js start -c routes.yaml` with the scenario's routes file (access
 * log on, every default feature on), stdout (the JSON log) to a file. `workers` adds `--workers N`; `pinned: false`
 * leaves it on every CPU.
 */
function gantrySystem(name: string, summary: string, pinned: boolean, workers?: number): System {
  return {
    name, kind: 'gantry', summary, pinned,
    unavailable: () => null,
    async start(ctx) {
      const upstream = `http://127.0.0.1:${ctx.upstreamPort}`;
      const g = await startGantry(ctx.group, { dir: ctx.dir, routesYaml: ctx.scenario.routesYaml(upstream), cpu: ctx.cpu, maxLifetimeS: ctx.maxLifetimeS, workers });
      const command = `node dist/gateway/cli.js start -c routes.yaml${workers === undefined ? '' : ` --workers ${workers}`}`;
      return {
        child: g.child,
        port: g.port,
        setup: `\`${command}\` (<dir>/routes.yaml); access log on: stdout (JSON lines) to <dir>/gantry.log`,
        async ready() {
          if (g.adminPort === null) return;
          const r = await probe(`http://127.0.0.1:${g.adminPort}/readyz`);
          if (r.status !== 200) throw new Error(`${name} /readyz answered ${r.status}`);
        },
        // Stopped gracefully (SIGTERM drains) so its asynchronous log is flushed, then every response must be logged.
        async finish(group, responses) {
          const stopped = await group.stop(g.child);
          const access = await countAccessLines(g.logFile);
          const logMiB = statSync(g.logFile).size / 2 ** 20;
          const warnings: string[] = [];
          if (access.lines < responses) warnings.push(`${name} logged ${access.lines} access lines for ${responses} responses`);
          if (stopped.code !== 0) warnings.push(`${name} exited with ${stopped.code ?? stopped.signal} on SIGTERM`);
          const n = (x: number) => x.toLocaleString('en-US');
          return { notes: [`${name} access log: ${n(access.lines)} lines (${logMiB.toFixed(0)} MiB) for ${n(responses)} responses counted through it`], warnings };
        },
      };
    },
  };
}

export const gantry = gantrySystem('gantry', 'Gantry, 1 process, on the proxy CPU like every other proxy', true);

/**
 * The multi-worker pair. 2 cores shared with the upstream and the load generator leave a second worker little room:
 * both run unpinned (CPUs 0 and 1, where the upstream and the load generator are pinned to CPU 1), so compare
 * gantry-Nw with gantry-unpinned (same placement, 1 process), not with gantry.
 */
export const gantryUnpinned = gantrySystem('gantry-unpinned', 'Gantry, 1 process, unpinned (every CPU): the baseline for gantry-Nw', false);
export function gantryWorkers(workers: number): System {
  return gantrySystem(`gantry-${workers}w`, `Gantry with --workers ${workers}, unpinned (every CPU): compare with gantry-unpinned`, false, workers);
}
