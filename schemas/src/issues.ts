/**
 * Valibot issues as {@link Problem}s, and the hints both CUE's and valibot's problems share: the
 * closest known field for an unknown one, the closest allowed value for a misspelt enum.
 *
 * @module
 */
import type * as v from 'valibot';
import { formatPath, parsePath, type PathSegment } from './path.ts';
import { didYouMean, type Problem } from './problems.ts';

/** Finds the line of a path in the source, where known. */
export type Locate = (path: string) => { line: number; column?: number } | undefined;

/** The parts of a valibot schema object that {@link fieldsAt} walks. */
interface SchemaNode {
  readonly type: string;
  readonly expects?: string;
  readonly entries?: Record<string, SchemaNode>;
  readonly wrapped?: SchemaNode;
  readonly item?: SchemaNode;
  readonly value?: SchemaNode;
}

/**
 * The fields an object in the schema allows, found by walking `path` through objects, arrays and
 * records.
 *
 * @param schema The root schema, e.g. `WorkflowSchema`.
 * @param path Segments to the object, e.g. `["operations", 0]`.
 * @returns Field name to field schema, or `undefined` when `path` does not lead to an object.
 */
export function fieldsAt(
  schema: v.GenericSchema,
  path: readonly PathSegment[],
): Record<string, SchemaNode> | undefined {
  let node: SchemaNode | undefined = unwrap(schema as unknown as SchemaNode);
  for (const segment of path) {
    if (!node) return undefined;
    if (node.entries) node = typeof segment === 'string' ? node.entries[segment] : undefined;
    else if (node.type === 'array') node = node.item;
    else if (node.type === 'record') node = node.value;
    else return undefined;
    node = node && unwrap(node);
  }
  return node?.entries;
}

function unwrap(node: SchemaNode): SchemaNode {
  let n = node;
  while (n.wrapped && /optional|nullable|nullish/.test(n.type)) n = n.wrapped;
  return n;
}

/**
 * Turns valibot issues into problems, one per unknown field (valibot stops at the first per object),
 * with the user's line where `locate` knows it.
 *
 * @param issues From `v.safeParse(schema, value).issues`.
 * @param options The schema (for hints), the file, and a locator into the source.
 * @returns Problems with code `schema`.
 */
export function issuesToProblems(
  issues: readonly v.BaseIssue<unknown>[],
  options: { schema: v.GenericSchema; file?: string; locate?: Locate },
): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path: PathSegment[] = (issue.path ?? []).map((item) => item.key as PathSegment);
    const unknownKey = issue.type.endsWith('object') && issue.expected === 'never';
    const missingKey =
      issue.type.endsWith('object') && issue.received === 'undefined' && path.length > 0;
    if (unknownKey) {
      // valibot reports the first unknown key of an object; report every one, as CUE does.
      const parent = path.slice(0, -1);
      const object = issue.path?.[issue.path.length - 1]?.input;
      const allowed = fieldsAt(options.schema, parent) ?? {};
      const keys =
        object && typeof object === 'object'
          ? Object.keys(object).filter((k) => !Object.prototype.hasOwnProperty.call(allowed, k))
          : [String(path[path.length - 1])];
      for (const key of keys)
        problems.push({
          code: 'schema',
          path: formatPath([...parent, key]),
          message: `unknown field "${key}"`,
        });
      continue;
    }
    if (missingKey) {
      const field = String(path[path.length - 1]);
      const expects = fieldsAt(options.schema, path.slice(0, -1))?.[field]?.expects;
      problems.push({
        code: 'schema',
        path: formatPath(path),
        message: 'missing required field',
        ...(expects ? { expected: stripParens(expects) } : {}),
      });
      continue;
    }
    problems.push({
      code: 'schema',
      path: formatPath(path),
      message: shortMessage(issue),
      ...(issue.expected !== null ? { expected: stripParens(issue.expected) } : {}),
      received: issue.received,
    });
  }
  return finishProblems(dedupe(problems), options);
}

/**
 * Completes problems for the user: the file, the line of the path (or of its nearest ancestor that
 * the source shows), did-you-mean hints, and source order.
 *
 * @param problems Problems from CUE or valibot.
 * @param options The schema (for hints), the file, and a locator into the source.
 * @returns The same problems, completed and sorted by line.
 */
export function finishProblems(
  problems: readonly Problem[],
  options: { schema: v.GenericSchema; file?: string; locate?: Locate },
): Problem[] {
  const done = problems.map((p): Problem => {
    let out: Problem = p;
    if (out.file === undefined && options.file !== undefined) out = { ...out, file: options.file };
    if (out.line === undefined && options.locate) {
      const at = locateNearest(out.path, options.locate);
      if (at)
        out = { ...out, line: at.line, ...(at.column !== undefined ? { column: at.column } : {}) };
    }
    const hint = out.hint ?? hintFor(out, options.schema);
    return hint ? { ...out, hint } : out;
  });
  return done
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.i - b.i)
    .map(({ p }) => p);
}

function locateNearest(path: string, locate: Locate) {
  const segments = parsePath(path);
  if (!segments) return locate(path);
  for (let n = segments.length; n >= 0; n--) {
    const at = locate(formatPath(segments.slice(0, n)));
    if (at) return at;
  }
  return undefined;
}

function hintFor(p: Problem, schema: v.GenericSchema): string | undefined {
  const unknown = /^unknown field "(.*)"$/.exec(p.message);
  const segments = parsePath(p.path);
  if (unknown && segments) {
    const allowed = Object.keys(fieldsAt(schema, segments.slice(0, -1)) ?? {});
    return (
      didYouMean(unknown[1]!, allowed) ??
      (allowed.length > 0 ? `allowed fields: ${allowed.join(', ')}` : undefined)
    );
  }
  if (p.message === 'not one of the allowed values' && p.expected && p.received?.startsWith('"')) {
    const options = [...p.expected.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    return didYouMean(JSON.parse(p.received) as string, options);
  }
  return undefined;
}

function shortMessage(issue: v.BaseIssue<unknown>): string {
  // Our schema's own messages ("a step needs a name") say it best; valibot's defaults start "Invalid".
  if (!issue.message.startsWith('Invalid ')) return issue.message;
  switch (issue.type) {
    case 'picklist':
      return 'not one of the allowed values';
    case 'min_value':
      return 'out of range';
    case 'max_value':
      return 'out of range';
    case 'integer':
      return 'not a whole number';
    case 'regex':
      return 'does not match the required pattern';
    case 'min_length':
      return 'too short';
    default:
      return issue.kind === 'schema'
        ? 'wrong type'
        : `invalid value (${issue.type.replace(/_/g, ' ')})`;
  }
}

function stripParens(text: string): string {
  return /^\(.*\)$/.test(text) ? text.slice(1, -1) : text;
}

function dedupe(problems: readonly Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\0${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
