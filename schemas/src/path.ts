/**
 * Field paths as problems spell them: `operations[2].depends_on[0]`, `labels["app.kubernetes.io"]`.
 *
 * @module
 */

/** One step of a path: an object key or a list index. */
export type PathSegment = string | number;

const IDENTIFIER = /^[A-Za-z_$#][A-Za-z0-9_$#-]*$/;

/**
 * Formats path segments as a dotted path.
 *
 * @param segments Keys and indices, outermost first.
 * @returns `operations[2].depends_on[0]`; keys that are not plain names are quoted, `labels["a.b"]`.
 */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * Parses a dotted path back into segments; the inverse of {@link formatPath}.
 *
 * @param path `operations[2].depends_on[0]`, `labels["a.b"]` or `` (the whole document).
 * @returns The segments, or `undefined` when the path is malformed.
 */
export function parsePath(path: string): PathSegment[] | undefined {
  const segments: PathSegment[] = [];
  let i = 0;
  while (i < path.length) {
    const ch = path[i];
    if (ch === '.') {
      if (segments.length === 0) return undefined;
      i += 1;
    } else if (ch === '[') {
      const close = path[i + 1] === '"' ? closingQuote(path, i + 1) + 1 : path.indexOf(']', i);
      if (close <= i || path[close] !== ']') return undefined;
      const inner = path.slice(i + 1, close);
      if (/^\d+$/.test(inner)) segments.push(Number(inner));
      else if (inner.startsWith('"')) segments.push(JSON.parse(inner) as string);
      else return undefined;
      i = close + 1;
      continue;
    }
    const match = /^[^.[]+/.exec(path.slice(i));
    if (!match) return undefined;
    segments.push(match[0]);
    i += match[0].length;
  }
  return segments;
}

/** The index of the quote closing the JSON string that opens at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i += 1;
    else if (text[i] === '"') return i;
  }
  return -1;
}
