/**
 * Locators: from a path like `operations[2].depends_on[0]` to the line and column that define it
 * in the source a workflow was read from.
 *
 * @module
 */
import type { Document, LineCounter } from 'yaml';
import { locateInCue } from './cue-source.ts';
import type { Locate } from './issues.ts';
import { parsePath } from './path.ts';
import { yamlLibrary } from './yaml-library.ts';

/**
 * A locator over a parsed YAML (or JSON) document: exact, from the parser's node ranges. A map
 * entry points at its key, a list element at the element.
 *
 * @param doc The document, parsed with `lineCounter`.
 * @param lineCounter The counter the parser filled.
 * @returns The locator.
 */
export function yamlLocator(doc: Document, lineCounter: LineCounter): Locate {
  const { isMap, isScalar, isSeq } = yamlLibrary();
  return (path) => {
    const segments = parsePath(path);
    if (!segments) return undefined;
    let node: unknown = doc.contents;
    let offset = (doc.contents as { range?: [number, number, number] } | null)?.range?.[0];
    for (const segment of segments) {
      if (typeof segment === 'number' && isSeq(node)) {
        const item: unknown = node.items[segment];
        const range = (item as { range?: [number, number, number] } | undefined)?.range;
        if (!range) return undefined;
        offset = range[0];
        node = item;
      } else if (typeof segment === 'string' && isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
        const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
        if (!pair || !range) return undefined;
        offset = range[0];
        node = pair.value;
      } else return undefined;
    }
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
}

/**
 * A locator over CUE source: a best-effort text search (see `cue-source.ts`), exact for files
 * written as data, `undefined` for values that references or comprehensions produce.
 *
 * @param source The user's CUE source.
 * @returns The locator.
 */
export function cueLocator(source: string): Locate {
  return (path) => {
    const segments = parsePath(path);
    return segments ? locateInCue(source, segments) : undefined;
  };
}
