/**
 * `muster validate FILE…`: loads and plans each workflow file and prints every problem, one per
 * line (`file:line:col: path: message (expected …, found …); hint`), or `ok FILE (N operations,
 * M tasks)`. Exit code 0 when every file is valid, 2 when one is not, 1 on any other failure.
 *
 * @module
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import type { FileValidation } from '../../../orchestrator/src/plan/load-and-plan.ts';
import type { WorkflowFormat } from '../../../schemas/src/load.ts';
import { formatProblem } from '../../../schemas/src/problems.ts';
import { EXIT_ERROR, EXIT_INVALID, EXIT_OK, reportError } from '../exit.ts';
import { inputFormatOption } from '../input-format.ts';
import { compileWasmForShortRunsIfSmall } from '../wasm-tier.ts';

/** Output formats of `muster validate`. */
export const VALIDATE_FORMATS = ['text', 'json'] as const;

/**
 * Registers `muster validate`.
 *
 * @param program The root command.
 */
export function validateCommand(program: Command): void {
  program
    .command('validate')
    .description('check workflow files: schema, names, dependencies, cycles, conflicts')
    .argument('<file...>', 'workflow files (.cue, .json, .yaml, .yml), or - for standard input')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(VALIDATE_FORMATS)
        .default('text'),
    )
    .addOption(inputFormatOption())
    .action(
      async (
        files: string[],
        flags: { output: (typeof VALIDATE_FORMATS)[number]; format?: WorkflowFormat },
      ) => {
        process.exitCode = await validate(files, flags.output, flags.format);
      },
    );
}

async function validate(
  files: readonly string[],
  output: (typeof VALIDATE_FORMATS)[number],
  format: WorkflowFormat | undefined,
): Promise<number> {
  compileWasmForShortRunsIfSmall(files);
  // The loader loads here, not with the command: `muster --help` need not.
  const { validateWorkflowFile } = await import('../../../orchestrator/src/plan/load-and-plan.ts');
  const results: FileValidation[] = [];
  let failed = false;
  for (const file of files) {
    try {
      const result = await validateWorkflowFile(file, { format });
      results.push(result);
      if (output === 'text') process.stdout.write(renderText(result));
    } catch (e: unknown) {
      // Not the file's fault (a broken catalog, a bug): say so and go on with the other files.
      failed = true;
      reportError(e);
    }
  }
  if (output === 'json') process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  if (failed) return EXIT_ERROR;
  return results.every((r) => r.valid) ? EXIT_OK : EXIT_INVALID;
}

function renderText(result: FileValidation): string {
  if (result.valid) {
    return `ok ${result.file} (${plural(result.operations ?? 0, 'operation')}, ${plural(result.tasks ?? 0, 'task')})\n`;
  }
  return result.problems.map((p) => `${formatProblem(p)}\n`).join('');
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
