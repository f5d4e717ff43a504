/**
 * Reads the errors `cue export` prints on stderr and turns them into {@link Problem}s.
 *
 * CUE prints one error per line, `path.to.field: message:`, followed by indented
 * `./file.cue:LINE:COL` lines naming every position that took part. A value that matches no branch
 * of a disjunction (an enum, or a field with a default) comes as `N errors in empty disjunction`
 * plus one error per branch; those are folded into a single problem with `expected` listing the
 * branches, and the default's branch (noise to the user) is dropped when a better error exists.
 *
 * @module
 */
import type { Problem } from './problems.ts';
import { formatPath, type PathSegment } from './path.ts';

/** One position CUE names for an error, as printed (file relative to CUE's working directory). */
export interface CueErrorLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** One error as CUE prints it. */
export interface CueError {
  /** The CUE path, e.g. `["doc", "operations", 0, "timeout"]`; empty when CUE names none. */
  readonly path: readonly PathSegment[];
  readonly message: string;
  readonly locations: readonly CueErrorLocation[];
}

/** A position in a file the user wrote. */
export interface UserPosition {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
}

const LOCATION_LINE = /^\s+(.+?):(\d+):(\d+)$/;
const PATH_PREFIX =
  /^((?:[A-Za-z0-9_$#]+|"(?:[^"\\]|\\.)*")(?:\.(?:[A-Za-z0-9_$#]+|"(?:[^"\\]|\\.)*"))*): (.*)$/;
const DISJUNCTION = /^\d+ errors in empty disjunction$/;

/** `=~"^(a|b|c)$"`: the bound an enum of plain words is written as; its values. */
const ENUM_PATTERN = /^=~"\^\(([\w-]+(?:\|[\w-]+)*)\)\$"$/;
const CONFLICT = /^conflicting values (.+)$/;
const LIST_LENGTHS = /^incompatible list lengths \((\d+) and (\d+)\)$/;
const TYPE_WORDS = new Set([
  'string',
  'int',
  'float',
  'number',
  'bool',
  'null',
  'bytes',
  'struct',
  'list',
  '_',
]);

/**
 * Parses CUE's stderr into errors.
 *
 * @param stderr What `cue export` printed.
 * @returns One entry per error line, with its locations.
 */
export function parseCueStderr(stderr: string): CueError[] {
  const errors: Array<{ path: PathSegment[]; message: string; locations: CueErrorLocation[] }> = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const location = LOCATION_LINE.exec(line);
    const last = errors[errors.length - 1];
    if (location && last) {
      last.locations.push({
        file: location[1]!,
        line: Number(location[2]),
        column: Number(location[3]),
      });
      continue;
    }
    if (/^\s/.test(line) && last) {
      // A continuation, e.g. the list of files an import failure names.
      last.message = `${last.message.replace(/:$/, '')}; ${line.trim()}`;
      continue;
    }
    const prefixed = PATH_PREFIX.exec(line);
    const path = prefixed ? parseCuePath(prefixed[1]!) : [];
    const message = (prefixed ? prefixed[2]! : line).replace(/:$/, '').trim();
    errors.push({ path, message, locations: [] });
  }
  return errors;
}

/** Splits a CUE path such as `doc.operations.0."a.b"` into segments; bare digits are list indices. */
export function parseCuePath(text: string): PathSegment[] {
  const segments: PathSegment[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|([^.]+)/g;
  for (const match of text.matchAll(pattern)) {
    if (match[1] !== undefined) segments.push(JSON.parse(`"${match[1]}"`) as string);
    else if (/^\d+$/.test(match[2]!)) segments.push(Number(match[2]));
    else segments.push(match[2]!);
  }
  return segments;
}

/** How {@link cueErrorsToProblems} maps CUE's view back to the user's. */
export interface CueProblemOptions {
  /** Maps a printed location to the user's file and position; `undefined` drops it (schema-internal). */
  readonly resolveLocation: (location: CueErrorLocation) => UserPosition | undefined;
  /** A path prefix to strip (the field the document was evaluated under). */
  readonly stripPrefix?: readonly PathSegment[];
  /** Where problems point when no location of the user's is known. */
  readonly file?: string;
}

/**
 * Turns CUE errors into problems: folds disjunctions, drops default-branch noise, names unknown
 * fields, and keeps only the user's locations.
 *
 * @param errors What {@link parseCueStderr} returned.
 * @param options How to map paths and locations back.
 * @returns Problems with code `schema` (or `cue` for errors that name no field, e.g. syntax errors).
 */
export function cueErrorsToProblems(
  errors: readonly CueError[],
  options: CueProblemOptions,
): Problem[] {
  const key = (path: readonly PathSegment[]) => JSON.stringify(path);
  const disjunctions = new Set(
    errors.filter((e) => DISJUNCTION.test(e.message)).map((e) => key(e.path)),
  );
  const body = errors.filter((e) => !DISJUNCTION.test(e.message));
  const isBranchNoise = (e: CueError) => CONFLICT.test(e.message) || LIST_LENGTHS.test(e.message);

  const problems: Problem[] = [];
  const merged = new Set<string>();
  for (const error of body) {
    const k = key(error.path);
    if (disjunctions.has(k) && isBranchNoise(error)) {
      const deeper = body.some(
        (o) => o.path.length > error.path.length && startsWith(o.path, error.path),
      );
      const better = body.some((o) => key(o.path) === k && !isBranchNoise(o));
      if (deeper || better || merged.has(k)) continue;
      // Only branch conflicts here: fold them into one "not one of" problem.
      merged.add(k);
      const siblings = body.filter((o) => key(o.path) === k && CONFLICT.test(o.message));
      problems.push(foldDisjunction(error, siblings, options));
      continue;
    }
    problems.push(toProblem(error, describe(error), options));
  }
  // A disjunction CUE reported without its branches still deserves a problem.
  for (const k of disjunctions) {
    if (body.some((e) => startsWith(e.path, JSON.parse(k) as PathSegment[]))) continue;
    const header = errors.find((e) => key(e.path) === k)!;
    problems.push(toProblem(header, { message: 'does not match any allowed value' }, options));
  }
  return dedupe(problems);
}

interface Described {
  message: string;
  expected?: string;
  received?: string;
  field?: string;
}

/** A short message plus expected/received for one CUE error. */
function describe(error: CueError): Described {
  const m = error.message;
  let match = /^field (\S+) not allowed$/.exec(m);
  if (match) return { message: `unknown field "${match[1]}"`, field: match[1]! };
  if (m === 'field not allowed') {
    const last = error.path[error.path.length - 1];
    return { message: `unknown field "${String(last)}"` };
  }
  match = /^incomplete value (.+)$/.exec(m);
  if (match) return { message: 'missing required field', expected: humanize(match[1]!) };
  match = /^invalid value (.+) \(out of bound (.+)\)$/.exec(m);
  if (match) {
    // The schema writes an enum without a default as a pattern of its values (see operation.cue).
    const values = ENUM_PATTERN.exec(match[2]!);
    if (values) {
      return {
        message: 'not one of the allowed values',
        expected: values[1]!
          .split('|')
          .map((v) => JSON.stringify(v))
          .join(' | '),
        received: match[1]!,
      };
    }
    const pattern = match[2]!.startsWith('=~');
    return {
      message: pattern ? 'does not match the required pattern' : 'out of range',
      expected: match[2]!,
      received: match[1]!,
    };
  }
  match = CONFLICT.exec(m);
  if (match) {
    const mismatched = / \(mismatched types (\S+) and (\S+)\)$/.exec(match[1]!);
    const [a, b] = splitConflict(mismatched ? match[1]!.slice(0, mismatched.index) : match[1]!);
    if (a !== undefined && b !== undefined) {
      const aIsType = isTypeLike(a);
      const expected = aIsType ? a : b;
      const received = aIsType ? b : a;
      return {
        message: mismatched ? 'wrong type' : 'conflicting values',
        expected: humanize(expected),
        received,
      };
    }
  }
  return { message: m };
}

/** One problem for a value that matched no branch: `expected` lists what the branches allow. */
function foldDisjunction(
  first: CueError,
  conflicts: readonly CueError[],
  options: CueProblemOptions,
): Problem {
  const pairs = conflicts
    .map((c) =>
      splitConflict(CONFLICT.exec(c.message)![1]!.replace(/ \(mismatched types .*\)$/, '')),
    )
    .filter((p): p is [string, string] => p[0] !== undefined && p[1] !== undefined);
  // The user's value is the one every branch conflicts with.
  const counts = new Map<string, number>();
  for (const [a, b] of pairs)
    for (const v of new Set([a, b])) counts.set(v, (counts.get(v) ?? 0) + 1);
  const received = [...counts].find(([, n]) => n === pairs.length && pairs.length > 1)?.[0];
  if (received === undefined) return toProblem(first, describe(first), options);
  let expected = [...new Set(pairs.map(([a, b]) => (a === received ? b : a)))];
  const mismatched = conflicts.every((c) => c.message.includes('(mismatched types '));
  // `*true | bool` against "no": the type says it; the default adds nothing.
  const types = expected.filter((e) => TYPE_WORDS.has(e));
  if (mismatched && types.length > 0) expected = types;
  const locations = conflicts.flatMap((c) => c.locations);
  return toProblem(
    { ...first, locations },
    {
      message: mismatched ? 'wrong type' : 'not one of the allowed values',
      expected: expected.join(' | '),
      received,
    },
    options,
  );
}

function toProblem(error: CueError, d: Described, options: CueProblemOptions): Problem {
  let path = [...error.path];
  const prefix = options.stripPrefix ?? [];
  if (prefix.length > 0 && startsWith(path, prefix)) path = path.slice(prefix.length);
  if (d.field !== undefined) path.push(d.field);
  const positions = error.locations
    .map((l) => options.resolveLocation(l))
    .filter((p): p is UserPosition => p !== undefined);
  // The last position the user wrote is the most specific: the field itself, not its parent.
  const best = positions.sort((x, y) => x.line - y.line || (x.column ?? 0) - (y.column ?? 0)).pop();
  const file = best?.file ?? options.file;
  return {
    code: error.path.length === 0 && d.field === undefined ? 'cue' : 'schema',
    path: formatPath(path),
    message: d.message,
    ...(file !== undefined ? { file } : {}),
    ...(best ? { line: best.line } : {}),
    ...(best?.column !== undefined ? { column: best.column } : {}),
    ...(d.expected !== undefined ? { expected: d.expected } : {}),
    ...(d.received !== undefined ? { received: d.received } : {}),
  };
}

/** Splits `A and B` where either side may be a quoted string containing " and ". */
function splitConflict(text: string): [string | undefined, string | undefined] {
  if (text.startsWith('"')) {
    let i = 1;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    const a = text.slice(0, i + 1);
    const rest = text.slice(i + 1);
    return rest.startsWith(' and ') ? [a, rest.slice(5)] : [undefined, undefined];
  }
  const at = text.indexOf(' and ');
  return at < 0 ? [undefined, undefined] : [text.slice(0, at), text.slice(at + 5)];
}

function isTypeLike(text: string): boolean {
  return (
    TYPE_WORDS.has(text) ||
    /^[<>!=]=?|^=~|^!~/.test(text) ||
    text.includes('|') ||
    text.startsWith('#')
  );
}

/** Says CUE's constraint syntax in words where it is obscure. */
function humanize(constraint: string): string {
  if (constraint === '!=""') return 'a non-empty string';
  return constraint;
}

function startsWith(path: readonly PathSegment[], prefix: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((s, i) => path[i] === s);
}

function dedupe(problems: readonly Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\0${p.message}\0${p.received ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
