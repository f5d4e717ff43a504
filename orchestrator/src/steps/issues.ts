/**
 * Valibot issues as {@link Problem}s a person can act on: a dotted path, a short message, what was
 * expected and found, and a did-you-mean hint for a misspelt parameter.
 *
 * @module
 */
import type * as v from 'valibot';
import { didYouMean, type Problem } from '../../../schemas/src/problems.ts';

/** How {@link issuesToProblems} labels what it returns. */
export interface IssuesToProblemsConfig {
  /** The problems' `code`. */
  readonly code: string;
  /** Prepended to each issue's path, e.g. `params` or `operations[0].steps[1].params`. */
  readonly path: string;
  /** The schema that produced the issues, to suggest known keys for unknown ones. */
  readonly schema?: v.GenericSchema;
}

/** Turns valibot issues into problems, one per issue. */
export function issuesToProblems(
  issues: readonly v.BaseIssue<unknown>[],
  config: IssuesToProblemsConfig,
): Problem[] {
  return issues.map((issue) => issueToProblem(issue, config));
}

function issueToProblem(issue: v.BaseIssue<unknown>, config: IssuesToProblemsConfig): Problem {
  const items = issue.path ?? [];
  const path = joinPath(config.path, items);
  const last = items[items.length - 1];
  const key = last && typeof last.key === 'string' ? last.key : undefined;
  const base = { code: config.code, path };

  if (issue.kind === 'schema' && issue.expected === 'never' && key !== undefined) {
    const known = config.schema ? knownKeys(config.schema, items.slice(0, -1)) : [];
    const hint = didYouMean(key, known);
    return {
      ...base,
      message: `unknown parameter "${key}"`,
      ...(known.length > 0
        ? { expected: `one of ${known.map((k) => `"${k}"`).join(', ')}`, received: `"${key}"` }
        : {}),
      ...(hint ? { hint } : {}),
    };
  }
  if (issue.kind === 'schema' && issue.received === 'undefined') {
    const expected = issue.type.endsWith('object') ? undefined : issue.expected;
    return expected
      ? { ...base, message: 'is required', expected, received: 'nothing' }
      : { ...base, message: 'is required' };
  }
  // Type mismatches and comparisons (`<=511`) say what was expected; a custom check or a regex
  // does not, so its message carries what was found instead (a value, not `Object` or `Array`).
  const expected =
    issue.expected !== null && !issue.expected.startsWith('/') ? issue.expected : undefined;
  if (expected !== undefined) {
    return { ...base, message: shortMessage(issue.message), expected, received: issue.received };
  }
  const message = shortMessage(issue.message);
  return {
    ...base,
    message:
      message.includes(issue.received) || /^[A-Z]/.test(issue.received)
        ? message
        : `${message}, found ${issue.received}`,
  };
}

/** `Invalid type: Expected string but received 1` → `invalid type`; custom messages stay whole. */
function shortMessage(message: string): string {
  const m = /^Invalid ([\w ]+): Expected .* but received .*$/s.exec(message);
  return m ? `invalid ${m[1]?.toLowerCase() ?? 'value'}` : message;
}

function joinPath(prefix: string, items: readonly v.IssuePathItem[]): string {
  let path = prefix;
  for (const item of items) {
    const key: unknown = item.key;
    if (typeof key === 'number') path += `[${key}]`;
    else if (typeof key === 'string')
      path += /^[A-Za-z_$][\w$-]*$/.test(key)
        ? `${path ? '.' : ''}${key}`
        : `[${JSON.stringify(key)}]`;
  }
  return path;
}

/** The keys an object schema allows at `items`, looking through optional, pipe and the like. */
function knownKeys(schema: v.GenericSchema, items: readonly v.IssuePathItem[]): string[] {
  let current: unknown = schema;
  for (const item of items) {
    const entries = objectEntries(current);
    if (!entries || typeof item.key !== 'string') return [];
    current = entries[item.key];
  }
  return Object.keys(objectEntries(current) ?? {});
}

function objectEntries(schema: unknown): Record<string, unknown> | undefined {
  let s: unknown = schema;
  // optional()/nullable() keep the inner schema in `wrapped`, pipe() in `pipe[0]`.
  for (let depth = 0; depth < 8 && typeof s === 'object' && s !== null; depth++) {
    const o = s as { entries?: unknown; wrapped?: unknown; pipe?: unknown[] };
    if (typeof o.entries === 'object' && o.entries !== null)
      return o.entries as Record<string, unknown>;
    s = o.wrapped ?? o.pipe?.[0];
  }
  return undefined;
}
