/**
 * `muster agent --server NAME --orchestrator URL --token T [--workdir DIR]`: runs on a target
 * server, serves that server's queue, and reconnects with backoff after a network cut. SIGTERM or
 * SIGINT drains it (the current task finishes, no new one starts); a second signal stops it now.
 *
 * Exit codes: 0 drained or stopped, 2 bad flags or a token refused (unknown, or bound to another
 * server), 1 refused otherwise (another agent serves the server).
 *
 * @module
 */
import type { Command } from 'commander';
import { NAME_PATTERN } from '../../../schemas/src/workflow.ts';
import { UsageError } from '../exit.ts';

interface AgentFlags {
  server: string;
  orchestrator?: string;
  token?: string;
  workdir?: string;
  handlers?: string;
  slots?: string;
  stopOnStdinClose?: boolean;
}

/** Registers `muster agent`. */
export function agentCommand(program: Command): void {
  program
    .command('agent')
    .description("run an agent on a server: take that server's tasks from the orchestrator")
    .requiredOption('--server <name>', 'the server this agent serves (its name in the inventory)')
    .option(
      '--orchestrator <url>',
      'the orchestrator, e.g. http://orchestrator:7070; replicas comma-separated, tried in turn (env MUSTER_ORCHESTRATOR)',
    )
    .option('--token <token>', 'an agent token bound to this server (env MUSTER_AGENT_TOKEN)')
    .option('--workdir <dir>', "where the server's steps run (default .muster/servers/NAME)")
    .option('--handlers <modules>', 'comma-separated modules with custom step handlers')
    .option('--slots <n>', 'tasks run at once (default 1)')
    .option('--stop-on-stdin-close', 'stop when stdin closes (for agents an orchestrator starts)')
    .action(async (flags: AgentFlags) => {
      process.exitCode = await agent(flags);
    });
}

async function agent(flags: AgentFlags): Promise<number> {
  if (!NAME_PATTERN.test(flags.server)) {
    throw new UsageError(
      `--server takes a server name (letters, digits, "_" or "-"), not "${flags.server}"`,
    );
  }
  const orchestrator = flags.orchestrator ?? process.env['MUSTER_ORCHESTRATOR'];
  if (!orchestrator) {
    throw new UsageError('give the orchestrator with --orchestrator URL (or MUSTER_ORCHESTRATOR)');
  }
  const token = flags.token ?? process.env['MUSTER_AGENT_TOKEN'];
  if (!token) {
    throw new UsageError(
      'give an agent token with --token (or MUSTER_AGENT_TOKEN): a token with role agent bound to this server',
    );
  }
  const slots = flags.slots === undefined ? undefined : Number(flags.slots);
  if (slots !== undefined && (!Number.isInteger(slots) || slots < 1 || slots > 256)) {
    throw new UsageError(`--slots takes a whole number from 1 to 256, not "${flags.slots}"`);
  }
  // Loaded here, not with the command: `muster --help` need not load the agent.
  const { runAgentProcess } = await import('../../../orchestrator/src/agents/process.ts');
  try {
    return await runAgentProcess({
      server: flags.server,
      orchestrator,
      token,
      ...(flags.workdir ? { workdir: flags.workdir } : {}),
      ...(flags.handlers ? { handlers: flags.handlers.split(',').map((s) => s.trim()) } : {}),
      ...(slots !== undefined ? { slots } : {}),
      stopOnStdinClose: flags.stopOnStdinClose ?? false,
    });
  } catch (e: unknown) {
    // A bad URL is a usage error (exit 2), like a bad flag.
    if (e instanceof Error && 'code' in e && e.code === 'ORC1507') {
      throw new UsageError(e.message.replace(/^\[ORC1507\] /, ''));
    }
    throw e;
  }
}
