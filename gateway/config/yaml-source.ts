import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';

export type YamlPath = readonly (string | number)[];

/** `routes[2].match.path`: the form every config problem is reported in. */
export function formatYamlPath(path: YamlPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

export interface Position { readonly line: number; readonly col: number }

/** Says where a path's value (or, with `key`, that mapping key) stands in the file. */
export interface Locator {
  locate(path: YamlPath, key?: string): Position;
}

/** A parsed YAML file that can say where any value (or key) stands, for file:line:col messages. */
export class YamlSource implements Locator {
  readonly doc: Document.Parsed;
  readonly #lines: LineCounter;

  constructor(text: string) {
    this.#lines = new LineCounter();
    // YAML 1.2 core schema: `yes` stays a string, so a typo cannot silently become a boolean.
    this.doc = parseDocument(text, { lineCounter: this.#lines, prettyErrors: false, uniqueKeys: true });
  }

  syntaxProblems(): { pos: Position; message: string }[] {
    return this.doc.errors.map((e) => ({ pos: this.positionOf(e.pos[0]), message: e.message }));
  }

  positionOf(offset: number): Position {
    const p = this.#lines.linePos(offset);
    return { line: p.line, col: p.col };
  }

  /**
   * Where `path` stands; with `key`, the position of the mapping key rather than its value (for unknown fields).
   * A path that does not exist resolves to its nearest existing parent (a missing field is reported on its map).
   */
  locate(path: YamlPath, key?: string): Position {
    let node: unknown = this.doc.contents;
    const segments = key === undefined ? path : [...path, key];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        if (key !== undefined && i === segments.length - 1) { node = pair.key; break; }
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        node = node.items[seg];
      } else {
        break;
      }
    }
    const range = (node as Node | null)?.range;
    return this.positionOf(range ? range[0] : 0);
  }
}
