/**
 * `muster batch pause|resume|cancel|terminate ID`: the controls without arguments.
 *
 * @module
 */
import type { Command } from 'commander';
import { controlRun } from '../../batch/control.ts';
import { runBatch } from '../../batch/context.ts';
import type { ControlAction } from '../../client.ts';
import { runIdArgument } from './arguments.ts';

const DESCRIPTIONS: ReadonlyArray<readonly [ControlAction, string]> = [
  ['pause', 'pause a run: running tasks finish, no new ones start'],
  ['resume', 'resume a paused run (also approves a canary waiting for approval)'],
  ['cancel', 'cancel a run: running tasks finish, the rest is skipped'],
  ['terminate', 'stop a run now: running tasks are killed'],
];

/** Registers `muster batch pause`, `resume`, `cancel` and `terminate`, one function each. */
export const controlCommands: ReadonlyArray<(batch: Command) => void> = DESCRIPTIONS.map(
  ([action, description]) =>
    (batch: Command) => {
      batch
        .command(action)
        .description(description)
        .addArgument(runIdArgument())
        .action(async (id: string, _flags: object, command: Command) => {
          process.exitCode = await runBatch(command, (ctx) => controlRun(ctx, id, action));
        });
    },
);
