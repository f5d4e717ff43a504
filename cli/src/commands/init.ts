/**
 * `muster init [DIR]`: scaffolds a CUE workflow project (the schema vendored under `cue.mod/` and a
 * starter `workflow.cue` that imports it) and prints the files it wrote. Existing files are left
 * alone, with exit code 2, unless `--force` is given.
 *
 * @module
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import {
  STARTER_WORKFLOW,
  ScaffoldExistsError,
  scaffoldWorkflowProject,
} from '../../../schemas/src/scaffold.ts';
import { UsageError } from '../exit.ts';

/**
 * Registers `muster init`.
 *
 * @param program The root command.
 */
export function initCommand(program: Command): void {
  program
    .command('init')
    .description(
      'scaffold a CUE workflow project: the Muster schema in cue.mod/ and a workflow.cue',
    )
    .argument('[dir]', 'the project directory, created if missing', '.')
    .option('-f, --force', 'overwrite files that already exist', false)
    .action(async (dir: string, flags: { force: boolean }) => {
      let written: string[];
      try {
        written = await scaffoldWorkflowProject(dir, { force: flags.force });
      } catch (e: unknown) {
        if (e instanceof ScaffoldExistsError)
          throw new UsageError(e.message.replace(/^\[\w+\] /, ''));
        throw e;
      }
      process.stdout.write(written.map((f) => `${join(dir, f)}\n`).join(''));
      const starter = join(dir, STARTER_WORKFLOW);
      process.stderr.write(`next: muster validate ${starter} && muster plan ${starter}\n`);
    });
}
