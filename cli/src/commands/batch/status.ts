/**
 * `muster batch status ID [--follow]`: a run's state, operations and task counts.
 *
 * @module
 */
import type { Command } from 'commander';
import { runBatch } from '../../batch/context.ts';
import { followRun } from '../../batch/follow.ts';
import { renderRunStatus } from '../../batch/render.ts';
import { EXIT_OK, EXIT_RUN_FAILED } from '../../exit.ts';
import { renderData } from '../../output/format.ts';
import { runIdArgument } from './arguments.ts';

/**
 * Registers `muster batch status`.
 *
 * @param batch The `batch` command.
 */
export function statusCommand(batch: Command): void {
  batch
    .command('status')
    .description("show a run's state, its operations and task counts")
    .addArgument(runIdArgument())
    .option(
      '-f, --follow',
      'show live progress until the run ends, then its status; exit 3 if it did not succeed',
    )
    .action(async (id: string, flags: { follow?: boolean }, command: Command) => {
      process.exitCode = await runBatch(command, async (ctx) => {
        const summary = flags.follow
          ? await followRun(ctx.client, id)
          : await ctx.client.status(id);
        ctx.out(renderData(summary, ctx.output, () => renderRunStatus(summary)));
        if (!flags.follow) return EXIT_OK;
        return summary.status === 'succeeded' ? EXIT_OK : EXIT_RUN_FAILED;
      });
    });
}
