/**
 * What every `muster batch` command shares: the global flags (`-o`, `--server`, `--token`), the
 * client they make, and one way of turning errors into messages and exit codes.
 *
 * @module
 */
import type { Command } from 'commander';
import { formatProblem, MusterError } from '../../../schemas/src/problems.ts';
import { createClient } from '../client.ts';
import type { MusterClient } from '../client.ts';
import { ApiError } from '../client-errors.ts';
import { EXIT_OK, exitCodeFor, reportError } from '../exit.ts';
import type { OutputFormat } from '../output/format.ts';
import { resolveConnection } from './connection.ts';

/** The flags of the `batch` group, which every subcommand accepts. */
export interface BatchGlobalFlags {
  readonly output: OutputFormat;
  readonly server?: string;
  readonly token?: string;
}

/** What a command body gets. */
export interface BatchContext {
  readonly client: MusterClient;
  readonly output: OutputFormat;
  /** Writes data to stdout. */
  out(text: string): void;
  /** Writes a note for people to stderr. */
  note(text: string): void;
}

/**
 * Runs a command body with its context, and turns what it throws into messages on stderr and an
 * exit code: 2 for input to fix (a bad flag, a file, a 400/413/422, with each validation problem
 * on its own line), 1 for any other error.
 *
 * @param command The commander command (its global flags are read from it).
 * @param body The command's work; returns an exit code, or nothing for 0.
 *
 * @returns The exit code.
 */
export async function runBatch(
  command: Command,
  body: (ctx: BatchContext) => Promise<number | void>,
): Promise<number> {
  // `muster batch logs -f | head`: once the reader is gone, stop quietly instead of crashing.
  process.stdout.once('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT_OK);
    throw e;
  });
  try {
    const flags = command.optsWithGlobals<BatchGlobalFlags>();
    const connection = resolveConnection(flags);
    const ctx: BatchContext = {
      client: createClient(connection),
      output: flags.output,
      out: (text) => process.stdout.write(text),
      note: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    };
    return (await body(ctx)) ?? EXIT_OK;
  } catch (e: unknown) {
    if (e instanceof ApiError) {
      reportApiError(e);
      return e.exitCode;
    }
    if (e instanceof MusterError) {
      reportError(e);
      return exitCodeFor(e);
    }
    throw e;
  }
}

/**
 * Prints an API error: each validation problem on its own line, as `muster validate` prints
 * them, then the server's message.
 *
 * @param e The error.
 * @param stream Where to write.
 */
export function reportApiError(e: ApiError, stream: NodeJS.WritableStream = process.stderr): void {
  for (const problem of e.problems) stream.write(`${formatProblem(problem)}\n`);
  const first = e.problems.length > 0 ? e.message.split('\n')[0]! : e.message;
  stream.write(`muster: ${first}\n`);
}
