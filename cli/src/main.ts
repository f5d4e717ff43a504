/**
 * The `muster` command line: parses arguments with commander and hands each command to its module
 * in `commands/`. Data goes to stdout, progress and errors to stderr.
 *
 * @module
 */
import { Command } from 'commander';
import { exitCodeFor, reportError } from './exit.ts';

const program = new Command('muster')
  .description('Typed batch workflows for server fleets')
  .version('0.1.0')
  .showHelpAfterError()
  // Before the commands register: subcommands copy it when created, so their usage errors exit 2.
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

type Register = (program: Command) => void;

// Each command module adds itself; the order here is the order in `muster --help`. Modules load
// lazily: `muster validate` need not load the database, the server or the agent.
const COMMANDS: Record<string, () => Promise<Register>> = {
  init: async () => (await import('./commands/init.ts')).initCommand,
  validate: async () => (await import('./commands/validate.ts')).validateCommand,
  plan: async () => (await import('./commands/plan.ts')).planCommand,
  run: async () => (await import('./commands/run/index.ts')).runCommand,
  agent: async () => (await import('./commands/agent.ts')).agentCommand,
  server: async () => (await import('./commands/server.ts')).serverCommand,
  batch: async () => (await import('./commands/batch/index.ts')).batchCommand,
};
const args = process.argv.slice(2);
const named = args.find((arg) => !arg.startsWith('-'));
const versionOnly = named === undefined && args.some((a) => a === '-V' || a === '--version');
const load =
  named !== undefined && named in COMMANDS
    ? [COMMANDS[named]!]
    : versionOnly
      ? []
      : Object.values(COMMANDS);
for (const register of await Promise.all(load.map((l) => l()))) register(program);

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
