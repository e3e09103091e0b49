import type { IncomingMessage } from 'node:http';
import type { StickyBy } from '../config/gateway-config.js';
import type { CompiledRoute } from './compiled-route.js';

/** FNV-1a, 32 bits: a cheap, stable hash of a sticky key (not a secret: a client may pick its side by choosing it). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A cookie's value in a Cookie header; undefined when absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * A route's canary split between services (routes.yaml `split:`). Each side is the route compiled as if it named that
 * service alone, so what follows the choice (the service lookup, load signals, scaling, metrics, the access log)
 * sees one plain route of one service. Without a sticky key, smooth weighted round-robin (nginx's): over every
 * `total` requests each side gets exactly its weight, interleaved. With `stickyBy`, a request carrying the cookie or
 * header goes to the side its value hashes to, every time while the weights stay; one without it is spread by weight.
 * The counters belong to the config: a reload starts them again.
 */
export class ServiceSplit {
  readonly #sides: readonly CompiledRoute[];
  readonly #weights: readonly number[];
  readonly #current: number[];
  readonly #total: number;
  readonly #sticky: StickyBy | null;

  constructor(sides: readonly CompiledRoute[], weights: readonly number[], sticky: StickyBy | null) {
    this.#sides = sides;
    this.#weights = weights;
    this.#current = weights.map(() => 0);
    this.#total = weights.reduce((a, b) => a + b, 0);
    this.#sticky = sticky;
  }

  get sides(): readonly CompiledRoute[] {
    return this.#sides;
  }

  pick(req: IncomingMessage): CompiledRoute {
    const sticky = this.#sticky;
    if (sticky !== null) {
      const raw = sticky.from === 'cookie' ? cookieValue(req.headers.cookie, sticky.name) : req.headers[sticky.name];
      const key = Array.isArray(raw) ? raw[0] : raw;
      if (key !== undefined && key !== '') return this.#byWeight(fnv1a(key) % this.#total);
    }
    const current = this.#current;
    const weights = this.#weights;
    let best = 0;
    for (let i = 0; i < current.length; i++) {
      (current[i] as number) += weights[i] as number;
      if ((current[i] as number) > (current[best] as number)) best = i;
    }
    (current[best] as number) -= this.#total;
    return this.#sides[best] as CompiledRoute;
  }

  /** The side whose share of [0, total) holds `point`. */
  #byWeight(point: number): CompiledRoute {
    let upTo = 0;
    for (let i = 0; i < this.#weights.length; i++) {
      upTo += this.#weights[i] as number;
      if (point < upTo) return this.#sides[i] as CompiledRoute;
    }
    return this.#sides[this.#sides.length - 1] as CompiledRoute;
  }
}
