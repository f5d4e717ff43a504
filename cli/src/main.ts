/**
 * The `muster` command line: parses arguments with commander and hands each command to its module
 * in `commands/`. Data goes to stdout, progress and errors to stderr.
 *
 * @module
 */
import { Command } from 'commander';
import { exitCodeFor, reportError } from './exit.ts';
import { initCommand } from './commands/init.ts';
import { planCommand } from './commands/plan.ts';
import { validateCommand } from './commands/validate.ts';
import { runCommand } from './commands/run.ts';
import { agentCommand } from './commands/agent.ts';
import { serverCommand } from './commands/server.ts';
import { batchCommand } from './commands/batch/index.ts';

const program = new Command('muster')
  .description('Typed batch workflows for server fleets')
  .version('0.1.0')
  .showHelpAfterError()
  // Before the commands register: subcommands copy it when created, so their usage errors exit 2.
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

// Each command module adds itself; the order here is the order in `muster --help`.
const commands: Array<(program: Command) => void> = [
  initCommand,
  validateCommand,
  planCommand,
  runCommand,
  agentCommand,
  serverCommand,
  batchCommand,
];
for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (e: unknown) {
  if (isCommanderExit(e)) process.exit(e.exitCode === 0 ? 0 : 2);
  reportError(e);
  process.exit(exitCodeFor(e));
}

function isCommanderExit(e: unknown): e is { exitCode: number; code: string } {
  return (
    typeof e === 'object' && e !== null && 'code' in e && String(e.code).startsWith('commander.')
  );
}
