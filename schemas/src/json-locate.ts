/**
 * A locator over JSON source that reads only what a path passes through.
 *
 * Problems in a JSON file name their line, which `JSON.parse` does not keep. Parsing the file
 * again with `yaml` for its node ranges took 20 s and 2 GB at 100k operations, once per `muster
 * validate` that found a problem. This scanner skips over values without building them: the first
 * path into a list records where each of its elements starts, so each later path into it reads
 * only its own element. The same file: one pass over the text, about 0.2 s.
 *
 * It answers as `yamlLocator` does over the same text (a test holds the two to it): an object's
 * entry points at its key, a list's element at the element, a repeated key at its first
 * occurrence, and a path that is not in the document at nothing.
 *
 * @module
 */
import type { Locate } from './issues.ts';
import { lineIndex } from './line-index.ts';
import { parsePath } from './path.ts';

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/** Where an object's key and its value start. */
interface Entry {
  readonly key: number;
  readonly value: number;
}

/**
 * A locator over a JSON document that `JSON.parse` accepts.
 *
 * @param source The document's text.
 * @returns The locator: a path's line and column (both from 1), or undefined.
 */
export function jsonLocator(source: string): Locate {
  const scanner = new JsonScanner(source);
  const positionOf = lineIndex(source);
  return (path) => {
    const segments = parsePath(path);
    if (!segments) return undefined;
    const offset = scanner.offsetOf(segments);
    return offset === undefined ? undefined : positionOf(offset);
  };
}

/** Walks valid JSON text by offsets, remembering the lists and objects it has read through. */
class JsonScanner {
  readonly #source: string;
  readonly #lists = new Map<number, number[]>();
  readonly #objects = new Map<number, Map<string, Entry>>();

  constructor(source: string) {
    this.#source = source;
  }

  /** Where the value (or, for an object's entry, the key) at `segments` starts. */
  offsetOf(segments: ReadonlyArray<string | number>): number | undefined {
    let value = this.#space(0);
    if (value >= this.#source.length) return undefined;
    let offset = value;
    for (const segment of segments) {
      const opener = this.#source.charCodeAt(value);
      if (typeof segment === 'number' && opener === OPEN_BRACKET) {
        const element = this.#elements(value)[segment];
        if (element === undefined) return undefined;
        offset = value = element;
      } else if (typeof segment === 'string' && opener === OPEN_BRACE) {
        const entry = this.#entries(value).get(segment);
        if (entry === undefined) return undefined;
        offset = entry.key;
        value = entry.value;
      } else {
        return undefined;
      }
    }
    return offset;
  }

  /** Where each element of the list at `at` starts. */
  #elements(at: number): number[] {
    let elements = this.#lists.get(at);
    if (elements !== undefined) return elements;
    elements = [];
    const source = this.#source;
    let i = this.#space(at + 1);
    if (source.charCodeAt(i) !== CLOSE_BRACKET) {
      for (;;) {
        elements.push(i);
        i = this.#space(this.#endOfValue(i));
        if (source.charCodeAt(i) !== COMMA) break;
        i = this.#space(i + 1);
      }
    }
    this.#lists.set(at, elements);
    return elements;
  }

  /** The entries of the object at `at`, by key; a repeated key keeps its first. */
  #entries(at: number): Map<string, Entry> {
    let entries = this.#objects.get(at);
    if (entries !== undefined) return entries;
    entries = new Map();
    const source = this.#source;
    let i = this.#space(at + 1);
    if (source.charCodeAt(i) !== CLOSE_BRACE) {
      for (;;) {
        const keyEnd = this.#endOfString(i);
        const raw = source.slice(i + 1, keyEnd - 1);
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        let value = this.#space(keyEnd);
        if (source.charCodeAt(value) === COLON) value = this.#space(value + 1);
        if (!entries.has(key)) entries.set(key, { key: i, value });
        i = this.#space(this.#endOfValue(value));
        if (source.charCodeAt(i) !== COMMA) break;
        i = this.#space(i + 1);
      }
    }
    this.#objects.set(at, entries);
    return entries;
  }

  /** The offset just past the value starting at `at`. */
  #endOfValue(at: number): number {
    const source = this.#source;
    const first = source.charCodeAt(at);
    if (first === QUOTE) return this.#endOfString(at);
    if (first === OPEN_BRACE || first === OPEN_BRACKET) {
      let depth = 0;
      for (let i = at; i < source.length; i++) {
        const c = source.charCodeAt(i);
        if (c === QUOTE) {
          i = this.#endOfString(i) - 1;
        } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          depth++;
        } else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) {
          return i + 1;
        }
      }
      return source.length;
    }
    // A number, true, false or null: up to the next delimiter.
    let i = at;
    while (i < source.length) {
      const c = source.charCodeAt(i);
      if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || isSpace(c)) break;
      i++;
    }
    return i;
  }

  /** The offset just past the string whose opening quote is at `at`. */
  #endOfString(at: number): number {
    const source = this.#source;
    for (let from = at + 1; ;) {
      const quote = source.indexOf('"', from);
      if (quote < 0) return source.length;
      let backslashes = 0;
      while (source.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) return quote + 1;
      from = quote + 1;
    }
  }

  /** The first offset from `at` that is not white space. */
  #space(at: number): number {
    const source = this.#source;
    let i = at;
    while (i < source.length && isSpace(source.charCodeAt(i))) i++;
    return i;
  }
}

/** JSON's white space: space, tab, line feed, carriage return. */
function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}
