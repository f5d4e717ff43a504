/**
 * Reads a workflow file for submission: the source text as written and its format, so the server
 * validates it with the same loader as `muster validate` (CUE stays CUE).
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { formatOf, whyUnreadable } from '../../../schemas/src/load.ts';
import type { WorkflowFormat } from '../../../schemas/src/load.ts';
import { MusterError } from '../../../schemas/src/problems.ts';
import { UsageError } from '../exit.ts';

/** The formats the server's loader reads. */
export const WORKFLOW_FORMATS = ['cue', 'json', 'yaml'] as const;

/** A workflow's source, ready to send. */
export interface WorkflowSource {
  /** The file as the user named it (`-` for standard input). */
  readonly file: string;
  readonly source: string;
  readonly format: WorkflowFormat;
}

/**
 * Reads a workflow file, or standard input for `-`.
 *
 * @param file The path, or `-`.
 * @param format The format; by default the extension's (`.cue`, `.json`, `.yaml`, `.yml`).
 * @param stdin Standard input, read for `-`.
 *
 * @returns The source and its format.
 *
 * @throws {UsageError} When the file cannot be read or its format cannot be told.
 */
export async function readWorkflowSource(
  file: string,
  format?: WorkflowFormat,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<WorkflowSource> {
  if (file === '-') {
    if (!format) {
      throw new UsageError('reading a workflow from standard input needs --format cue|json|yaml');
    }
    return { file: '<stdin>', source: await readAll(stdin), format };
  }
  let resolved: WorkflowFormat;
  try {
    resolved = format ?? formatOf(file);
  } catch (e: unknown) {
    throw e instanceof MusterError ? new UsageError(e.message.replace(/^\[\w+\] /, '')) : e;
  }
  try {
    return { file, source: await readFile(file, 'utf8'), format: resolved };
  } catch (e: unknown) {
    throw new UsageError(`cannot read workflow file "${file}": ${whyUnreadable(e)}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
