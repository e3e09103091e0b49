import { isMap, isPair, isScalar, isSeq, type Node } from 'yaml';
import type { Locator, Position, YamlPath, YamlSource } from './yaml-source.js';

/** One node of the document: what it is (to know how a path continues) and where its value and its key stand. */
export interface LocatedNode {
  readonly kind: 'map' | 'seq' | 'scalar';
  readonly at: Position;
  readonly keyAt?: Position;
}

/** Plain data (a Map of plain objects): it crosses from the parse worker to the main thread. */
export type LocationData = ReadonlyMap<string, LocatedNode>;

// A map child is named by its key as a string, a sequence child by its index: the same matching YamlSource.locate does.
const child = (parent: string, kind: LocatedNode['kind'], seg: string | number): string | null => {
  if (kind === 'map') return `${parent}\0k${String(seg)}`;
  if (kind === 'seq' && typeof seg === 'number') return `${parent}\0i${seg}`;
  return null;
};

function kindOf(node: unknown): LocatedNode['kind'] {
  return isMap(node) ? 'map' : isSeq(node) ? 'seq' : 'scalar';
}

/**
 * The positions of the document root and of every node under the top-level keys `roots`, so problems found after the
 * parse (on the main thread, with the plugin registry) are still reported at file:line:col without the YAML tree.
 */
export function collectLocations(source: YamlSource, roots: readonly string[]): LocationData {
  const out = new Map<string, LocatedNode>();
  const at = (node: unknown) => source.positionOf((node as Node | null)?.range?.[0] ?? 0);
  const walk = (node: unknown, name: string, keyAt?: Position): void => {
    const kind = kindOf(node);
    out.set(name, { kind, at: at(node), keyAt });
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        walk(pair.value, child(name, kind, String(pair.key.value))!, at(pair.key));
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, child(name, kind, i)!));
    }
  };
  const root = source.doc.contents;
  out.set('', { kind: kindOf(root), at: at(root) });
  if (isMap(root)) {
    for (const pair of root.items) {
      if (isPair(pair) && isScalar(pair.key) && roots.includes(String(pair.key.value))) {
        walk(pair.value, child('', 'map', String(pair.key.value))!, at(pair.key));
      }
    }
  }
  return out;
}

/** Locates paths from collected positions, with YamlSource.locate's rules (a missing path falls back to its parent). */
export class YamlLocations implements Locator {
  constructor(private readonly nodes: LocationData) {}

  locate(path: YamlPath, key?: string): Position {
    const segments = key === undefined ? path : [...path, key];
    let name = '';
    let node = this.nodes.get(name);
    for (let i = 0; node && i < segments.length; i++) {
      const next = child(name, node.kind, segments[i]!);
      const found = next === null ? undefined : this.nodes.get(next);
      if (!found) break;
      if (key !== undefined && i === segments.length - 1) return found.keyAt ?? found.at;
      name = next!;
      node = found;
    }
    return node?.at ?? { line: 1, col: 1 };
  }
}
