/**
 * `muster batch retry ID [OPERATION]`: run a run's failed tasks again.
 *
 * @module
 */
import { Argument } from 'commander';
import type { Command } from 'commander';
import { controlRun } from '../../batch/control.ts';
import { runBatch } from '../../batch/context.ts';
import { runIdArgument } from './arguments.ts';

/**
 * Registers `muster batch retry`.
 *
 * @param batch The `batch` command.
 */
export function retryCommand(batch: Command): void {
  batch
    .command('retry')
    .description("retry a run's failed and skipped tasks, or only one operation's")
    .addArgument(runIdArgument())
    .addArgument(new Argument('[operation]', 'only this operation (and what depends on it)'))
    .action(async (id: string, operation: string | undefined, _flags: object, command: Command) => {
      process.exitCode = await runBatch(command, (ctx) =>
        controlRun(ctx, id, 'retry', operation === undefined ? {} : { operation }),
      );
    });
}
