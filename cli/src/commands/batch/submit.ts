/**
 * `muster batch submit FILE`: validate, plan or run a workflow on the orchestrator.
 *
 * @module
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { runBatch } from '../../batch/context.ts';
import { collectKeyValues } from '../../batch/key-value.ts';
import { submitWorkflow } from '../../batch/submit.ts';
import type { SubmitOptions } from '../../batch/submit.ts';
import { WORKFLOW_FORMATS } from '../../batch/workflow-source.ts';

/**
 * Registers `muster batch submit`.
 *
 * @param batch The `batch` command.
 */
export function submitCommand(batch: Command): void {
  batch
    .command('submit')
    .description('submit a workflow file: the run starts at once; prints its id')
    .argument('<file>', 'a workflow file (.cue, .json, .yaml, .yml), or - for stdin with --format')
    .addOption(
      new Option('--validate', 'only validate it on the server; create no run').conflicts([
        'dryRun',
        'watch',
      ]),
    )
    .addOption(
      new Option(
        '--dry-run',
        'only plan it on the server and print the plan; create no run',
      ).conflicts('watch'),
    )
    .option('--watch', 'follow the run with live progress until it ends; exit 3 if it fails')
    .option(
      '--set <key=value>',
      "an input value, repeatable; the server checks it against the workflow's typed inputs",
      collectKeyValues('--set'),
    )
    .option('--label <key=value>', 'a label on the run, repeatable', collectKeyValues('--label'))
    .option('--env <name>', "one of the workflow's environments, for its input values")
    .option('--idempotency-key <key>', 'submit once per key: a repeat returns the existing run')
    .addOption(
      new Option('--format <format>', 'the source format (default: from the extension)').choices(
        WORKFLOW_FORMATS,
      ),
    )
    .addHelpText(
      'after',
      '\nWith -o table, stdout gets the run id alone (RUN=$(muster batch submit wf.cue)).\n' +
        'With --watch, stdout gets the final status; Ctrl-C stops watching (exit 130), not the run.',
    )
    .action(async (file: string, flags: SubmitOptions, command: Command) => {
      process.exitCode = await runBatch(command, (ctx) => submitWorkflow(ctx, file, flags));
    });
}
