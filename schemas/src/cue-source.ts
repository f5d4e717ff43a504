/**
 * Just enough CUE syntax to prepare a user's file for evaluation and to find fields in it: the
 * package clause and imports, and a best-effort text search from a path like
 * `operations[2].depends_on[0]` to the line that defines it.
 *
 * This is no parser: it tracks strings, comments and brackets, which is enough for files written
 * as data (the common case) and degrades to "not found" for files that compute their values.
 *
 * @module
 */
import type { PathSegment } from './path.ts';

/** The head of a CUE file. */
export interface CueHeader {
  /** The `package` clause's name, if any. */
  readonly packageName?: string;
  /** Import paths, e.g. `muster.dev/schemas:muster`, `strings`. */
  readonly imports: readonly string[];
  /** Offset just after the package clause and the last import: where declarations begin. */
  readonly end: number;
}

/** A rewritten copy of a user's CUE file and how to map its positions back. */
export interface WrappedCue {
  readonly source: string;
  readonly mapPosition: (
    line: number,
    column: number,
  ) => { line: number; column: number } | undefined;
}

interface Scan {
  /** `true` where the character is code: not inside a string or comment. */
  readonly code: boolean[];
  /** `true` inside a comment. */
  readonly comment: boolean[];
  /** Bracket depth at each character (an opening bracket has the outer depth). */
  readonly depth: number[];
}

/**
 * Marks which characters are code, and their bracket depth.
 *
 * @param src CUE source.
 * @returns Per-character code flags and depths.
 */
function scan(src: string): Scan {
  const code = new Array<boolean>(src.length).fill(true);
  const comment = new Array<boolean>(src.length).fill(false);
  const depth = new Array<number>(src.length).fill(0);
  let d = 0;
  let i = 0;
  const mark = (from: number, to: number, isComment = false) => {
    for (let k = from; k < to && k < src.length; k++) {
      code[k] = false;
      comment[k] = isComment;
      depth[k] = d;
    }
  };
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? src.length : end;
      mark(i, stop, true);
      i = stop;
      continue;
    }
    const quote = /^#*("""|"|'''|')/.exec(src.slice(i, i + 8));
    if (quote && (ch !== '#' || quote[0].length > 1)) {
      const hashes = quote[0].length - quote[1]!.length;
      const close = quote[1]! + '#'.repeat(hashes);
      let k = i + quote[0].length;
      while (k < src.length && !src.startsWith(close, k)) {
        if (src[k] === '\\' && hashes === 0) k += 1;
        k += 1;
      }
      const stop = Math.min(src.length, k + close.length);
      mark(i, stop);
      i = stop;
      continue;
    }
    if (ch === '{' || ch === '[' || ch === '(') {
      depth[i] = d;
      d += 1;
    } else if (ch === '}' || ch === ']' || ch === ')') {
      d = Math.max(0, d - 1);
      depth[i] = d;
    } else depth[i] = d;
    i += 1;
  }
  return { code, comment, depth };
}

/**
 * Reads a CUE file's package clause and imports.
 *
 * @param src CUE source.
 * @returns The package name, import paths and where declarations start.
 */
export function parseCueHeader(src: string): CueHeader {
  let i = 0;
  let end = 0;
  let packageName: string | undefined;
  const imports: string[] = [];
  const skipSpace = () => {
    for (;;) {
      while (i < src.length && /\s/.test(src[i]!)) i += 1;
      if (!src.startsWith('//', i)) return;
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end;
    }
  };
  const word = () => /^[A-Za-z_$#][\w$#]*/.exec(src.slice(i))?.[0];
  const stringAt = () => {
    const m = /^"((?:[^"\\\n]|\\.)*)"/.exec(src.slice(i));
    return m;
  };
  skipSpace();
  if (word() === 'package') {
    i += 'package'.length;
    skipSpace();
    const name = word();
    if (name) {
      packageName = name;
      i += name.length;
      end = i;
    }
  }
  for (;;) {
    skipSpace();
    if (src[i] === ',') {
      i += 1;
      skipSpace();
    }
    if (word() !== 'import') break;
    i += 'import'.length;
    skipSpace();
    const one = () => {
      const alias = word();
      if (alias) {
        i += alias.length;
        skipSpace();
      }
      const s = stringAt();
      if (!s) return false;
      imports.push(JSON.parse(`"${s[1]}"`) as string);
      i += s[0].length;
      end = i;
      return true;
    };
    if (src[i] === '(') {
      i += 1;
      for (;;) {
        skipSpace();
        if (src[i] === ')') {
          i += 1;
          end = i;
          break;
        }
        if (src[i] === ',') {
          i += 1;
          continue;
        }
        if (!one()) return { ...(packageName ? { packageName } : {}), imports, end };
      }
    } else if (!one()) break;
  }
  return { ...(packageName ? { packageName } : {}), imports, end };
}

/**
 * Rewrites a user's CUE file so that its top level is checked as a definition:
 * `package p, <field>: <definition> & { …the user's declarations… }`. The text is added on the
 * header's last line (or before line 1), so the user's line numbers stay as they are.
 *
 * @param src The user's CUE source.
 * @param options The field to wrap into, the definition to unify with, the package to use when the
 *   file has no package clause.
 * @returns The new source and a mapper from its positions back to the user's.
 */
export function wrapCueSource(
  src: string,
  options: { field: string; definition: string; defaultPackage: string },
): WrappedCue {
  const header = parseCueHeader(src);
  const opening = `${options.field}: ${options.definition} & {`;
  const insertions: Array<{ at: number; text: string }> = [];
  if (header.packageName === undefined) {
    if (header.imports.length === 0)
      insertions.push({ at: 0, text: `package ${options.defaultPackage}, ${opening}` });
    else {
      insertions.push({ at: 0, text: `package ${options.defaultPackage}, ` });
      insertions.push({ at: header.end, text: `, ${opening}` });
    }
  } else insertions.push({ at: header.end, text: `, ${opening}` });

  let source = '';
  let last = 0;
  for (const ins of insertions) {
    source += src.slice(last, ins.at) + ins.text;
    last = ins.at;
  }
  source += `${src.slice(last)}\n}\n`;

  const lineCount = src.split('\n').length;
  const shifts = insertions.map((ins) => {
    const { line, column } = positionOf(src, ins.at);
    return { line, column, length: ins.text.length };
  });
  const mapPosition = (line: number, column: number) => {
    if (line > lineCount) return undefined;
    let added = 0;
    for (const shift of shifts) {
      if (shift.line !== line) continue;
      const start = shift.column + added;
      if (column < start) break;
      if (column < start + shift.length) return undefined;
      added += shift.length;
    }
    return { line, column: column - added };
  };
  return { source, mapPosition };
}

/** The 1-based line and column of an offset. */
function positionOf(src: string, offset: number): { line: number; column: number } {
  const before = src.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/**
 * Finds where a path is defined in a CUE file, by text search.
 *
 * @param src CUE source (the user's, unwrapped).
 * @param segments The path, e.g. `["operations", 2, "depends_on", 0]`.
 * @returns The key's (or list element's) line and column, or `undefined` when the search fails,
 *   e.g. for values produced by comprehensions or references.
 */
export function locateInCue(
  src: string,
  segments: readonly PathSegment[],
): { line: number; column: number } | undefined {
  const s = scan(src);
  const header = parseCueHeader(src);
  let region = { start: header.end, end: src.length, depth: 0 };
  let found: number | undefined;
  for (const [n, segment] of segments.entries()) {
    if (typeof segment === 'number') {
      const list = openBracket(src, s, region, '[');
      if (!list) return undefined;
      const item = nthElement(src, s, list, segment);
      if (!item) return undefined;
      found = item.start;
      region = item;
    } else {
      // The top level may be wrapped, `#Workflow & { … }`: look one level down if not at the top.
      const at =
        findKey(src, s, region, segment) ??
        (n === 0 ? findKeyInside(src, s, region, segment) : undefined) ??
        (() => {
          const inner = openBracket(src, s, region, '{');
          return inner ? findKey(src, s, inner, segment) : undefined;
        })();
      if (!at) return undefined;
      found = at.key;
      region = at.value;
    }
  }
  return found === undefined ? undefined : positionOf(src, found);
}

interface Region {
  start: number;
  end: number;
  depth: number;
}

/** The key `name` declared directly in `region`, and the region of its value. */
function findKey(
  src: string,
  s: Scan,
  region: Region,
  name: string,
): { key: number; value: Region } | undefined {
  const quoted = JSON.stringify(name);
  for (let i = region.start; i < region.end; i++) {
    if (s.depth[i] !== region.depth) continue;
    let len: number;
    if (s.code[i] && src.startsWith(name, i) && !/[\w$#]/.test(src[i + name.length] ?? ''))
      len = name.length;
    else if (!s.code[i] && src.startsWith(quoted, i)) len = quoted.length;
    else continue;
    if (i > 0 && /[\w$#"]/.test(src[i - 1]!) && s.code[i - 1]) continue;
    const after = /^[?!]?\s*:(?!=)/.exec(src.slice(i + len, i + len + 8));
    if (!after) continue;
    const prev = previousCode(src, s, i);
    if (prev !== undefined && !/[{,:\n(]/.test(src[prev]!) && !lineBreakBetween(src, prev, i))
      continue;
    const valueStart = i + len + after[0].length;
    return {
      key: i,
      value: { start: valueStart, end: fieldEnd(src, s, valueStart, region), depth: region.depth },
    };
  }
  return undefined;
}

/** Looks for `name` inside any top-level `{ … }` of `region` (an embedded `#Def & { … }`). */
function findKeyInside(src: string, s: Scan, region: Region, name: string) {
  for (let i = region.start; i < region.end; i++) {
    if (s.code[i] && src[i] === '{' && s.depth[i] === region.depth) {
      const close = matching(s, i, region.end);
      const hit = findKey(src, s, { start: i + 1, end: close, depth: region.depth + 1 }, name);
      if (hit) return hit;
      i = close;
    }
  }
  return undefined;
}

/** The region inside the first `{` or `[` that opens directly in `region`. */
function openBracket(src: string, s: Scan, region: Region, bracket: '{' | '['): Region | undefined {
  for (let i = region.start; i < region.end; i++) {
    if (!s.code[i] || s.depth[i] !== region.depth) continue;
    if (src[i] === bracket)
      return { start: i + 1, end: matching(s, i, src.length), depth: region.depth + 1 };
  }
  return undefined;
}

/** The index of the bracket closing the one at `open`. */
function matching(s: Scan, open: number, limit: number): number {
  const d = s.depth[open]!;
  for (let i = open + 1; i < limit; i++) {
    if (s.code[i] && s.depth[i] === d && i !== open) return i;
  }
  return limit;
}

/** The `n`th element of the list whose inside is `list`; commas or line breaks separate them. */
function nthElement(src: string, s: Scan, list: Region, n: number): Region | undefined {
  let index = 0;
  let start: number | undefined;
  for (let i = list.start; i <= list.end; i++) {
    const atEnd = i === list.end;
    const ch = src[i]!;
    const separator =
      atEnd ||
      (s.code[i] &&
        s.depth[i] === list.depth &&
        (ch === ',' || (ch === '\n' && endsValue(src, s, i))));
    if (separator) {
      if (start !== undefined) {
        if (index === n) return { start, end: i, depth: list.depth };
        index += 1;
        start = undefined;
      }
      continue;
    }
    if (start === undefined && !s.comment[i] && !/\s/.test(ch)) start = i;
  }
  return undefined;
}

/** Whether a line break at `i` ends a value (CUE inserts a comma there). */
function endsValue(src: string, s: Scan, i: number): boolean {
  const prev = previousCode(src, s, i);
  return prev !== undefined && /[\w"')\]}]/.test(src[prev]!);
}

/** Where the field whose value starts at `start` ends: a comma or line break at the region's depth. */
function fieldEnd(src: string, s: Scan, start: number, region: Region): number {
  let sawValue = false;
  for (let i = start; i < region.end; i++) {
    if (s.depth[i] !== region.depth) {
      sawValue = true;
      continue;
    }
    if (!s.code[i]) {
      sawValue = true;
      continue;
    }
    const ch = src[i]!;
    if (ch === ',') return i;
    if (ch === '\n' && sawValue && endsValue(src, s, i)) return i;
    if (!/\s/.test(ch)) sawValue = true;
  }
  return region.end;
}

/** The index of the last code, non-space character before `i`. */
function previousCode(src: string, s: Scan, i: number): number | undefined {
  for (let k = i - 1; k >= 0; k--) {
    if (src[k] === '\n') return k;
    if (!s.comment[k] && !/\s/.test(src[k]!)) return k;
  }
  return undefined;
}

function lineBreakBetween(src: string, from: number, to: number): boolean {
  return src.slice(from, to).includes('\n');
}
