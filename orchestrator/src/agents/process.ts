/**
 * An agent as a process: what `muster agent` runs. It loads the step handlers, starts the agent,
 * drains on the first SIGTERM or SIGINT (and stops at once on the second), and, when started by
 * an orchestrator with `stopOnStdinClose`, stops when its parent dies (its stdin closes).
 *
 * @module
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createStepRegistry, loadHandlerModules } from '../steps/registry.ts';
import type { SecretsLoader } from '../secrets/index.ts';
import { startAgent, agentSocketUrl, type AgentOptions, type AgentStop } from './agent.ts';
import { AGENT_CLOSE } from './protocol.ts';
import { AgentConfigError } from './errors.ts';

/** Options of {@link runAgentProcess}. */
export interface AgentProcessOptions extends Omit<AgentOptions, 'registry' | 'log' | 'workdir'> {
  /** @default `.muster/servers/SERVER` */
  readonly workdir?: string;
  /** Modules with custom step handlers, as for `muster run --handlers`. */
  readonly handlers?: readonly string[];
  /** Stop (aborting what runs) when stdin closes: the parent that started the agent is gone. */
  readonly stopOnStdinClose?: boolean;
  /** Where log lines go. @default stderr, time-stamped */
  readonly log?: (line: string) => void;
}

/** Exit codes of `muster agent`. */
export const AGENT_EXIT = {
  /** Drained or stopped on request. */
  ok: 0,
  /** Refused: superseded by another agent, or a protocol error. */
  refused: 1,
  /** Refused for its token: unknown, or bound to another server. */
  badToken: 2,
} as const;

/**
 * Runs an agent until it stops.
 *
 * @returns the exit code: 0 drained or stopped, 2 refused for its token, 1 refused otherwise
 *
 * @throws {AgentConfigError} `ORC1507` for a bad URL or an empty token
 * @throws {HandlerModuleError} `ORC1402` for a handler module that does not load
 */
export async function runAgentProcess(options: AgentProcessOptions): Promise<number> {
  if (!options.token) {
    throw new AgentConfigError(
      'an agent needs a token: give --token or set MUSTER_AGENT_TOKEN (a token with role agent, bound to this server)',
    );
  }
  // Checked now, so a bad URL is a usage error before anything starts; replicas comma-separated.
  for (const url of options.orchestrator.split(',')) agentSocketUrl(url.trim());
  const log =
    options.log ??
    ((line: string) =>
      process.stderr.write(`${new Date().toISOString()} agent ${options.server}: ${line}\n`));
  const registry = createStepRegistry();
  if (options.handlers?.length) await loadHandlerModules(registry, [...options.handlers]);
  const workdir = resolve(options.workdir ?? `.muster/servers/${options.server}`);
  await mkdir(workdir, { recursive: true });

  // Loaded on first use: decryption libraries are not worth their start-up time to most tasks.
  let loader: Promise<SecretsLoader> | undefined;
  const secrets: SecretsLoader = {
    async load(config) {
      loader ??= import('../secrets/index.ts').then((m) =>
        m.createSecretsLoader({ env: process.env, cwd: process.cwd() }),
      );
      return (await loader).load(config);
    },
  };
  const agent = startAgent({ ...options, workdir, registry, secrets, log });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      log(`${signal}: draining (send it again to stop now)`);
      agent.drain();
    } else {
      agent.stop(`stopped by a second ${signal}`);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const onStdinGone = () => agent.stop('the orchestrator that started this agent is gone');
  if (options.stopOnStdinClose) {
    process.stdin.on('end', onStdinGone);
    process.stdin.on('close', onStdinGone);
    process.stdin.on('error', onStdinGone);
    process.stdin.resume();
  }
  let stop: AgentStop;
  try {
    stop = await agent.done;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    if (options.stopOnStdinClose) {
      process.stdin.off('end', onStdinGone);
      process.stdin.off('close', onStdinGone);
      process.stdin.pause();
      process.stdin.unref?.();
    }
  }
  if (stop.reason === 'drained') {
    log('drained: every report delivered; stopped');
    return AGENT_EXIT.ok;
  }
  if (stop.reason === 'stopped') {
    log(stop.message);
    return AGENT_EXIT.ok;
  }
  log(`refused: [${REFUSAL_CODES[stop.code] ?? 'ORC1501'}] ${stop.message}`);
  return stop.code === AGENT_CLOSE.unauthenticated || stop.code === AGENT_CLOSE.forbidden
    ? AGENT_EXIT.badToken
    : AGENT_EXIT.refused;
}

/** The error code of each refusal, as in `errors.ts`. */
const REFUSAL_CODES: Readonly<Record<number, string>> = {
  [AGENT_CLOSE.protocol]: 'ORC1501',
  [AGENT_CLOSE.unauthenticated]: 'ORC1502',
  [AGENT_CLOSE.forbidden]: 'ORC1503',
  [AGENT_CLOSE.superseded]: 'ORC1504',
};
