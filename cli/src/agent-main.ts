/**
 * `muster agent` alone: the same command as in `main.ts`, without loading the other commands (the
 * orchestrator, the database, the CUE loader). The local provider starts agents through this
 * entry, so a fleet of local servers starts in a fraction of the time.
 *
 * @module
 */
import { Command } from 'commander';
import { exitCodeFor, reportError } from './exit.ts';
import { agentCommand } from './commands/agent.ts';

const program = new Command('muster')
  .description('Typed batch workflows for server fleets')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });
agentCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e: unknown) {
  if (
    typeof e === 'object' &&
    e !== null &&
    'code' in e &&
    String(e.code).startsWith('commander.')
  ) {
    process.exit((e as unknown as { exitCode: number }).exitCode === 0 ? 0 : 2);
  }
  reportError(e);
  process.exit(exitCodeFor(e));
}
