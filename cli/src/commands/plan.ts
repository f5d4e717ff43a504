/**
 * `muster plan FILE`: loads and plans a workflow file and prints the plan as a table (default),
 * JSON, Graphviz dot or a Mermaid flowchart. An invalid file prints its problems on stderr, one per
 * line, and exits with code 2.
 *
 * @module
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import {
  PLAN_FORMATS,
  renderPlanChunks,
  type PlanFormat,
} from '../../../orchestrator/src/plan/render.ts';
import type { WorkflowFormat } from '../../../schemas/src/load.ts';
import { formatProblem, InvalidWorkflowError } from '../../../schemas/src/problems.ts';
import { EXIT_INVALID, reportError } from '../exit.ts';
import { inputFormatOption } from '../input-format.ts';
import { writePieces } from '../output/write-pieces.ts';
import { compileWasmForShortRunsIfSmall } from '../wasm-tier.ts';

/**
 * Registers `muster plan`.
 *
 * @param program The root command.
 */
export function planCommand(program: Command): void {
  program
    .command('plan')
    .description('show the tasks and the order a workflow file would run in')
    .argument('<file>', 'a workflow file (.cue, .json, .yaml, .yml), or - for standard input')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(PLAN_FORMATS).default('table'),
    )
    .addOption(inputFormatOption())
    .action(async (file: string, flags: { output: PlanFormat; format?: WorkflowFormat }) => {
      compileWasmForShortRunsIfSmall([file]);
      // The loader and planner load here, not with the command: `muster --help` need not.
      const { isFileError, loadAndPlanFile } =
        await import('../../../orchestrator/src/plan/load-and-plan.ts');
      try {
        const { plan } = await loadAndPlanFile(file, { format: flags.format });
        await writePieces(process.stdout, renderPlanChunks(plan, flags.output));
      } catch (e: unknown) {
        if (e instanceof InvalidWorkflowError) {
          process.stderr.write(e.problems.map((p) => `${formatProblem(p)}\n`).join(''));
          process.exitCode = EXIT_INVALID;
        } else if (isFileError(e)) {
          reportError(e);
          process.exitCode = EXIT_INVALID;
        } else {
          throw e;
        }
      }
    });
}
