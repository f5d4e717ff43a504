/**
 * Runs the real `muster` CLI in a child process, from the repository root, as a user would: the
 * compiled CLI when dist/ is the build of the current sources, else `node --import tsx
 * cli/src/main.ts ARGS` (scripts/muster-entry.ts).
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { musterNodeArgs } from '../../../scripts/muster-entry.ts';

/** The repository root: relative file arguments resolve from here. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** What a CLI run left behind. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the CLI with arguments and collects its exit code and output.
 *
 * @param args The arguments after `muster`.
 * @param options.input What the CLI reads on standard input.
 *
 * @returns The exit code, stdout and stderr.
 */
export function runCli(
  args: readonly string[],
  options: { readonly input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [...musterNodeArgs(), ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, MUSTER_DEBUG: '', FORCE_COLOR: '0' },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
    // Standard input: what was given, or nothing (a command that reads it sees it end).
    child.stdin?.end(options.input ?? '');
  });
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}
