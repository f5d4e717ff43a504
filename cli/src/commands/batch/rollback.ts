/**
 * `muster batch rollback ID [--to-checkpoint N]`: undo a run's finished tasks, newest first.
 *
 * @module
 */
import type { Command } from 'commander';
import { controlRun } from '../../batch/control.ts';
import { runBatch } from '../../batch/context.ts';
import { parseWholeNumber } from '../../batch/key-value.ts';
import { runIdArgument } from './arguments.ts';

/**
 * Registers `muster batch rollback`.
 *
 * @param batch The `batch` command.
 */
export function rollbackCommand(batch: Command): void {
  batch
    .command('rollback')
    .description('roll a run back: compensate its finished tasks in reverse order')
    .addArgument(runIdArgument())
    .option('--to-checkpoint <n>', 'only undo what finished after this checkpoint')
    .action(async (id: string, flags: { toCheckpoint?: string }, command: Command) => {
      process.exitCode = await runBatch(command, (ctx) =>
        controlRun(ctx, id, 'rollback', {
          ...(flags.toCheckpoint === undefined
            ? {}
            : { to_checkpoint: parseWholeNumber(flags.toCheckpoint, '--to-checkpoint') }),
        }),
      );
    });
}
