/**
 * `muster batch logs ID [-f]`: a run's events; with `--follow`, as they happen until the run
 * ends, resuming after a dropped connection from the last event seen.
 *
 * @module
 */
import type { Command } from 'commander';
import { runBatch } from '../../batch/context.ts';
import { parseWholeNumber } from '../../batch/key-value.ts';
import { formatEventLine } from '../../batch/render.ts';
import { EXIT_INTERRUPTED } from '../../exit.ts';
import { renderData, renderStreamItem } from '../../output/format.ts';
import { runIdArgument } from './arguments.ts';

/**
 * Registers `muster batch logs`.
 *
 * @param batch The `batch` command.
 */
export function logsCommand(batch: Command): void {
  batch
    .command('logs')
    .description("show a run's events (task output, retries, state changes)")
    .addArgument(runIdArgument())
    .option('-f, --follow', 'stream events until the run ends (-o json: one JSON object a line)')
    .option('--after <seq>', 'only events after this sequence number', '0')
    .action(async (id: string, flags: { follow?: boolean; after: string }, command: Command) => {
      process.exitCode = await runBatch(command, async (ctx) => {
        const after = parseWholeNumber(flags.after, '--after');
        if (!flags.follow) {
          const events = await ctx.client.allLogs(id, after);
          ctx.out(
            renderData(events, ctx.output, () =>
              events.map((e) => `${formatEventLine(e)}\n`).join(''),
            ),
          );
          return;
        }
        process.once('SIGINT', () => process.exit(EXIT_INTERRUPTED));
        for await (const event of ctx.client.followLogs(id, {
          after,
          onReconnect: (seq, reason) =>
            ctx.note(`connection lost (${reason}); reconnecting after event ${seq}…`),
        })) {
          ctx.out(renderStreamItem(event, ctx.output, () => formatEventLine(event)));
        }
      });
    });
}
