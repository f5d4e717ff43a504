/**
 * `muster run FILE`: runs a workflow to the end in this process, on the embedded PGlite under
 * `.muster/` (or PostgreSQL with `--database-url`), with live progress on stderr and a summary
 * table on stdout. `--id` names the run: after a crash the same command resumes it, and once it
 * has finished the command prints its result without running anything.
 *
 * Inputs come from their defaults, `--env NAME` (the workflow's `environments`) and `--set
 * key=value` (repeatable, parsed by the input's type), checked before the run is created. The
 * workflow's secrets are read once before too, so a missing key or a tampered file stops here.
 * Events are logged as the workflow's `logging` says, with one exception: stdout holds the summary
 * alone, so the console destination (`stdout`) writes to stderr — and only with `--no-progress`,
 * as the live progress already shows the run there. Log files are written either way.
 *
 * Exit codes: 0 succeeded, 3 the run did not succeed, 2 invalid input, 130 interrupted (the run
 * resumes with the same `--id`).
 *
 * @module
 */
import { Option, type Command } from 'commander';

/** The flags of `muster run`, as commander parses them. */
export interface RunFlags {
  id?: string;
  concurrency?: string;
  databaseUrl?: string;
  stateDir?: string;
  handlers?: string;
  output: 'table' | 'json';
  approve?: boolean;
  progress: boolean;
  set: string[];
  env?: string;
}

/** Registers `muster run`. */
export function runCommand(program: Command): void {
  program
    .command('run')
    .description(
      'run a workflow to the end in this process (embedded database unless --database-url)',
    )
    .argument('<file>', 'a workflow file (.cue, .json, .yaml, .yml)')
    .option('--id <run-id>', 'name the run; the same command resumes it after a crash')
    .option('--concurrency <n>', 'tasks running at once (default 64)')
    .option(
      '--database-url <url>',
      'PostgreSQL instead of the embedded database (env DATABASE_URL)',
    )
    .option('--state-dir <dir>', "Muster's local state (default .muster, env MUSTER_STATE_DIR)")
    .option('--handlers <modules>', 'comma-separated modules with custom step handlers')
    .option(
      '--set <key=value>',
      'set an input, parsed by its type (repeatable): --set replicas=3 --set tags=a,b',
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option('--env <name>', "use an environment's input values and labels (workflow environments)")
    .option('--approve', 'approve a canary rollout waiting for approval, then go on')
    .option('--no-progress', 'no live progress on stderr')
    .addOption(
      new Option('-o, --output <format>', 'summary format')
        .choices(['table', 'json'])
        .default('table'),
    )
    .action(async (file: string, flags: RunFlags) => {
      // The run's modules load here, not with the command: `muster --help` need not load them.
      const { run } = await import('./execute.ts');
      process.exitCode = await run(file, flags);
    });
}
