/**
 * Problems a user can act on: the shape every validation and planning error takes.
 *
 * @module
 */
import { closest, distance } from 'fastest-levenshtein';

/** One thing wrong with a workflow, located as precisely as we know. */
export interface Problem {
  /** A stable kind: `schema`, `unknown-operation`, `cycle`, `conflict`, … */
  readonly code: string;
  /** Dotted path to the field, e.g. `operations[2].depends_on[0]`; empty for the whole document. */
  readonly path: string;
  readonly message: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly expected?: string;
  readonly received?: string;
  /** What to do about it, e.g. `did you mean "install-base"?`. */
  readonly hint?: string;
}

/** Base of Muster's typed errors: a stable code, a message that says what to do, the cause. */
export class MusterError extends Error {
  override readonly name: string = 'MusterError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[${code}] ${message}`, options);
  }
}

/** A workflow that does not validate or plan: all of its problems, not just the first. */
export class InvalidWorkflowError extends MusterError {
  override readonly name = 'InvalidWorkflowError';
  constructor(
    readonly problems: readonly Problem[],
    readonly file?: string,
  ) {
    super(
      'MUS2001',
      `${file ?? 'the workflow'} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
    );
  }
}

/** Renders a problem as one line: `file:line: path: message (expected …, found …); hint`. */
export function formatProblem(p: Problem): string {
  const where = p.file
    ? `${p.file}${p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}: `
    : '';
  const field = p.path ? `${p.path}: ` : '';
  const detail =
    p.expected !== undefined || p.received !== undefined
      ? ` (expected ${p.expected ?? '?'}, found ${p.received ?? '?'})`
      : '';
  return `${where}${field}${p.message}${detail}${p.hint ? `; ${p.hint}` : ''}`;
}

/** Suggests the closest known name for a misspelt one, or nothing when none is close. */
export function didYouMean(name: string, known: Iterable<string>): string | undefined {
  const candidates = Array.isArray(known) ? (known as readonly string[]) : [...known];
  if (candidates.length === 0) return undefined;
  const best = closest(name, candidates);
  const limit = Math.max(2, Math.floor(name.length / 3));
  return distance(name, best) <= limit ? `did you mean "${best}"?` : undefined;
}
