/**
 * `muster batch list`: runs, newest first, filtered by status, name and labels.
 *
 * @module
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { RUN_STATUSES } from '../../../../orchestrator/src/engine/types.ts';
import { runBatch } from '../../batch/context.ts';
import { collectKeyValues, parseWholeNumber } from '../../batch/key-value.ts';
import { renderRunList } from '../../batch/render.ts';
import { renderData } from '../../output/format.ts';

interface ListFlags {
  readonly status?: string;
  readonly name?: string;
  readonly label?: string[];
  readonly limit?: string;
  readonly cursor?: string;
  readonly all?: boolean;
}

/**
 * Registers `muster batch list`.
 *
 * @param batch The `batch` command.
 */
export function listCommand(batch: Command): void {
  batch
    .command('list')
    .description('list runs, newest first')
    .addOption(new Option('--status <status>', 'only runs in this state').choices(RUN_STATUSES))
    .option('--name <name>', 'only runs of this workflow name')
    .option(
      '--label <key=value>',
      'only runs with this label, repeatable',
      collectKeyValues('--label'),
    )
    .option('--limit <n>', 'runs per page (the server caps it)')
    .addOption(new Option('--cursor <cursor>', 'the page after this cursor').conflicts('all'))
    .option('--all', 'every matching run, following the pages')
    .action(async (flags: ListFlags, command: Command) => {
      process.exitCode = await runBatch(command, async (ctx) => {
        const query = {
          ...(flags.status ? { status: flags.status } : {}),
          ...(flags.name ? { name: flags.name } : {}),
          ...(flags.label?.length ? { labels: flags.label } : {}),
          ...(flags.limit ? { limit: parseWholeNumber(flags.limit, '--limit', 1) } : {}),
        };
        if (flags.all) {
          const items = await ctx.client.listAll(query);
          ctx.out(renderData(items, ctx.output, () => renderRunList(items)));
          return;
        }
        const page = await ctx.client.list({
          ...query,
          ...(flags.cursor ? { cursor: flags.cursor } : {}),
        });
        ctx.out(renderData(page.items, ctx.output, () => renderRunList(page.items)));
        if (page.next_cursor) {
          ctx.note(`more runs: add --all, or --cursor ${page.next_cursor} for the next page`);
        }
      });
    });
}
