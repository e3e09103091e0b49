import { direct } from './direct.js';
import { gantry, gantryUnpinned, gantryWorkers } from './gantry.js';
import { haproxy } from './haproxy.js';
import { nginx } from './nginx.js';
import { bareHttpProxy, bareUndici, expressProxy, fastGateway } from './node-anchor.js';
import type { System } from './system.js';

/** The systems a plain `npm run bench` runs, in the order of every round. */
export const defaultSystems: readonly System[] = [direct, gantry, nginx, haproxy, bareHttpProxy, fastGateway, expressProxy];

/** The names --systems takes, for --help and error messages. */
export const systemNames = `${defaultSystems.map((s) => s.name).join(', ')}, bare-undici, gantry-unpinned, gantry-Nw (N workers)`;

function byName(name: string): System {
  const known = defaultSystems.find((s) => s.name === name);
  if (known) return known;
  if (name === gantryUnpinned.name) return gantryUnpinned;
  if (name === bareUndici.name) return bareUndici;
  const workers = /^gantry-(\d+)w$/.exec(name);
  if (workers && Number(workers[1]) >= 2) return gantryWorkers(Number(workers[1]));
  throw new Error(`no system "${name}"; there are: ${systemNames}`);
}

/**
 * The systems of this run: `--systems a,b,c` (default: all of defaultSystems), plus, with `--workers N`, the pair
 * gantry-unpinned and gantry-Nw. direct always runs, first: every ratio is taken against it.
 */
export function selectSystems(list: string | undefined, workers: number | undefined): System[] {
  const chosen = list === undefined ? [...defaultSystems] : list.split(',').map((n) => n.trim()).filter(Boolean).map(byName);
  if (workers !== undefined) chosen.push(gantryUnpinned, gantryWorkers(workers));
  const unique = new Map<string, System>([[direct.name, direct]]);
  for (const s of chosen) unique.set(s.name, s);
  return [...unique.values()];
}

export const nativeServers = [nginx, haproxy];
