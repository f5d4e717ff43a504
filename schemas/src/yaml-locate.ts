/**
 * A locator over YAML source that js-yaml reads (see `readYamlValue`), from js-yaml's own node
 * events instead of a second parse with `yaml`.
 *
 * Problems in a YAML file name their line, which the value js-yaml returns does not keep. Parsing
 * the file again with `yaml` for its node ranges took 20 s and 1.9 GB at 100k operations, once per
 * `muster validate` that found a problem. js-yaml reports where each node opens as it reads
 * (its `listener` option); kept as numbers in typed arrays, that is the whole document's layout
 * in about a second.
 *
 * It answers as `yamlLocator` does over the same text (a test holds the two to it): an entry of a
 * mapping points at its key, an element of a sequence at the element, a repeated key at its first
 * occurrence, and a path that is not in the document at nothing. A path through a list with an
 * empty item goes to the slow locator it is given.
 *
 * @module
 */
import { load } from 'js-yaml';
import type { Locate } from './issues.ts';
import { lineIndex } from './line-index.ts';
import { parsePath } from './path.ts';
import { CORE_AS_YAML_READS_IT } from './yaml-value.ts';

const SCALAR = 0;
const SEQUENCE = 1;
const MAPPING = 2;

/** The nodes of a document, numbered in the order they open: growable columns. */
class Nodes {
  count = 0;
  start = new Int32Array(1024);
  /** Where js-yaml stood when the node closed. */
  end = new Int32Array(1024);
  kind = new Uint8Array(1024);
  firstChild = new Int32Array(1024).fill(-1);
  nextSibling = new Int32Array(1024).fill(-1);
  children = new Int32Array(1024);
  /** A sequence's length, which its children fall short of when an item is empty. */
  items = new Int32Array(1024);
  /** The text of scalars, which a mapping's keys are. */
  readonly text: Array<string | undefined> = [];

  add(start: number): number {
    if (this.count === this.start.length) this.#grow();
    const node = this.count++;
    this.start[node] = start;
    return node;
  }

  #grow(): void {
    const size = this.start.length * 2;
    const grown = <T extends Int32Array | Uint8Array>(from: T, fill?: number): T => {
      const to = new (from.constructor as new (n: number) => T)(size);
      if (fill !== undefined) to.fill(fill);
      to.set(from);
      return to;
    };
    this.start = grown(this.start);
    this.end = grown(this.end);
    this.kind = grown(this.kind);
    this.children = grown(this.children);
    this.items = grown(this.items);
    this.firstChild = grown(this.firstChild, -1);
    this.nextSibling = grown(this.nextSibling, -1);
  }
}

/**
 * A locator over YAML that js-yaml reads with muster's schema. Reading happens on the first call.
 *
 * @param source The document's text.
 * @param fallback Where paths through a sequence with an empty item go (js-yaml reports no node
 *   for such an item, so the others cannot be told apart).
 * @returns The locator: a path's line and column (both from 1), or undefined.
 */
export function yamlValueLocator(source: string, fallback: Locate): Locate {
  let nodes: Nodes | undefined;
  const positionOf = lineIndex(source);
  return (path) => {
    const segments = parsePath(path);
    if (!segments) return undefined;
    nodes ??= readNodes(source);
    if (nodes.count === 0) return undefined;
    let node = unwrap(nodes, 0);
    let offset = nodes.start[node]!;
    for (const segment of segments) {
      const kind = nodes.kind[node];
      let child = nodes.firstChild[node]!;
      if (typeof segment === 'number' && kind === SEQUENCE) {
        // An empty item (`-` alone) has no node: which node is which item is then unknown.
        if (nodes.children[node] !== nodes.items[node]) return fallback(path);
        for (let i = 0; i < segment && child >= 0; i++) child = nodes.nextSibling[child]!;
        if (child < 0) return undefined;
        offset = nodes.start[child]!;
        node = unwrap(nodes, child);
      } else if (typeof segment === 'string' && kind === MAPPING) {
        // Keys and values alternate.
        while (child >= 0 && nodes.text[child] !== segment) {
          const value = nodes.nextSibling[child]!;
          child = value < 0 ? -1 : nodes.nextSibling[value]!;
        }
        const value = child < 0 ? -1 : nodes.nextSibling[child]!;
        if (value < 0) return undefined;
        offset = nodes.start[child]!;
        node = unwrap(nodes, value);
      } else {
        return undefined;
      }
    }
    return positionOf(offset);
  };
}

/**
 * The node that holds a value. js-yaml opens a sequence's item, then the value inside it, both at
 * the same place and of the same kind: the inner one has the value's own children.
 */
function unwrap(nodes: Nodes, node: number): number {
  let at = node;
  for (;;) {
    const child = nodes.firstChild[at]!;
    if (
      nodes.children[at] !== 1 ||
      nodes.start[child] !== nodes.start[at] ||
      nodes.kind[child] !== nodes.kind[at] ||
      nodes.end[child] !== nodes.end[at]
    ) {
      return at;
    }
    at = child;
  }
}

/** Reads `source` with js-yaml, keeping where each node starts and how they nest. */
function readNodes(source: string): Nodes {
  const nodes = new Nodes();
  const open: number[] = [];
  const lastChild: number[] = [];
  try {
    load(source, {
      schema: CORE_AS_YAML_READS_IT,
      listener(event, state) {
        if (event === 'open') {
          // js-yaml opens a value before the space and comments in front of it.
          const node = nodes.add(contentStart(source, state.position));
          const parent = open[open.length - 1];
          if (parent !== undefined) {
            const previous = lastChild[lastChild.length - 1]!;
            if (previous < 0) nodes.firstChild[parent] = node;
            else nodes.nextSibling[previous] = node;
            nodes.children[parent] = nodes.children[parent]! + 1;
            lastChild[lastChild.length - 1] = node;
          }
          open.push(node);
          lastChild.push(-1);
          return;
        }
        const node = open.pop()!;
        lastChild.pop();
        const { kind, result } = state as unknown as { kind: string | null; result: unknown };
        nodes.end[node] = state.position;
        if (kind === 'sequence') {
          nodes.kind[node] = SEQUENCE;
          nodes.items[node] = (result as unknown[]).length;
        } else if (kind === 'mapping') nodes.kind[node] = MAPPING;
        else {
          nodes.kind[node] = SCALAR;
          nodes.text[node] = String(result);
        }
      },
    });
  } catch {
    // Only a locator: a document js-yaml cannot read has no locations here.
    return new Nodes();
  }
  return nodes;
}

/**
 * Where the node js-yaml opened at `at` starts, as `yaml` places it: past white space, comments
 * and the node's anchor or tag (`&name`, `!tag`).
 */
function contentStart(source: string, at: number): number {
  let i = at;
  for (;;) {
    const c = source.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
    } else if (c === 35 /* # */) {
      const end = source.indexOf('\n', i);
      if (end < 0) return source.length;
      i = end + 1;
    } else if (c === 38 /* & */ || c === 33 /* ! */) {
      while (i < source.length && !/\s/.test(source[i]!)) i++;
    } else {
      return i;
    }
  }
}
