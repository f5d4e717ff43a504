/**
 * Exit codes, in one place: 0 ok, 1 error, 2 invalid input, 3 the run failed, 130 interrupted.
 *
 * @module
 */
import { InvalidWorkflowError, MusterError } from '../../schemas/src/problems.ts';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_INVALID = 2;
export const EXIT_RUN_FAILED = 3;
export const EXIT_INTERRUPTED = 130;

/** Input the user must fix (a bad flag value, a missing file): exit code 2. */
export class UsageError extends MusterError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('CLI2001', message);
  }
}

/** The exit code for an error that reached the top. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof InvalidWorkflowError || e instanceof UsageError) return EXIT_INVALID;
  return EXIT_ERROR;
}

/** Prints an error for a person: the message, never a stack, unless MUSTER_DEBUG is set. */
export function reportError(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`muster: ${message}\n`);
  if (process.env['MUSTER_DEBUG'] && e instanceof Error && e.stack) {
    process.stderr.write(`${e.stack}\n`);
  }
}
