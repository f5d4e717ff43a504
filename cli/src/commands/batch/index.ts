/**
 * `muster batch …`: drive runs on an orchestrator (`muster server`) over its REST API and
 * WebSocket. The group's flags (`-o`, `--server`, `--token`) go before or after the subcommand.
 *
 * @module
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { DEFAULT_SERVER } from '../../client.ts';
import { OUTPUT_FORMATS } from '../../output/format.ts';
import { controlCommands } from './control.ts';
import { listCommand } from './list.ts';
import { logsCommand } from './logs.ts';
import { retryCommand } from './retry.ts';
import { rollbackCommand } from './rollback.ts';
import { statusCommand } from './status.ts';
import { submitCommand } from './submit.ts';

/**
 * Registers `muster batch` and its subcommands.
 *
 * @param program The root command.
 */
export function batchCommand(program: Command): void {
  const batch = program
    .command('batch')
    .description('submit, watch and control runs on a Muster server (`muster server`)')
    .addOption(
      new Option('-o, --output <format>', 'output format (data on stdout, notes on stderr)')
        .choices(OUTPUT_FORMATS)
        .default('table'),
    )
    .option(
      '--server <url>',
      `the orchestrator's URL (env MUSTER_SERVER; default ${DEFAULT_SERVER})`,
    )
    .option(
      '--token <token>',
      'bearer token (env MUSTER_TOKEN, which keeps it out of the process list)',
    )
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 error (server unreachable, refused, not found), 2 invalid input ' +
        '(a bad flag, an invalid workflow), 3 the run did not succeed (--watch, --follow), ' +
        '130 interrupted (the run keeps going on the server).',
    );
  const register = [
    submitCommand,
    statusCommand,
    listCommand,
    logsCommand,
    rollbackCommand,
    retryCommand,
    ...controlCommands,
  ];
  for (const add of register) add(batch);
}
