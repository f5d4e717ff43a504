/**
 * The `local` provider: a server is a sandbox directory under `.muster/servers/NAME` on this
 * machine and, with `agents`, a real `muster agent` process serving it, so a fresh machine can run
 * a whole fleet.
 *
 * With agents: create makes the sandbox and starts the agent (a live one is reused), and resolves
 * once the agent has registered; delete drains the agent, kills it after a grace period, and
 * removes the sandbox; status is `running` with a live agent, `stopped` with only the sandbox,
 * `absent` without it. The agent's pid file and log are in the sandbox's `.muster-agent/`. Agents
 * stop when the process that started them exits (their stdin closes), and an agent left by a
 * previous process is replaced, never shared.
 *
 * Without agents, servers are bare sandboxes and steps run in the orchestrator's process.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MusterError } from '../../schemas/src/problems.ts';
import type { CreateResult, Provider, ProviderServer, ServerStatus } from '../types.ts';
import {
  defaultAgentCommand,
  isAgentAlive,
  killStrays,
  readPidFile,
  removePidFile,
  signal,
  tailFile,
  waitForExit,
  writePidFile,
  type AgentCommand,
} from './agent-process.ts';

export type { AgentCommand } from './agent-process.ts';

/** How the local provider runs agents. */
export interface LocalAgentsOptions {
  /** The URL agents connect to; called before each start (the first call may start listening). */
  endpoint(): Promise<string>;
  /** A fresh token that serves only this server. */
  token(server: string): string;
  /** Resolves once the server's agent has registered with the orchestrator. */
  waitReady(server: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** The command that starts `muster agent`. @default this checkout's lean agent entry */
  readonly command?: AgentCommand;
  /** Modules with custom step handlers, loaded by every agent. */
  readonly handlers?: readonly string[];
  /** How long an agent may take to register. @default 30_000 */
  readonly startTimeoutMs?: number;
  /** How long a stopping agent may drain before it is killed. @default 10_000 */
  readonly stopGraceMs?: number;
  /** Where the provider says what it does to agents. @default nothing */
  readonly log?: (line: string) => void;
}

/** Options of the local provider. */
export interface LocalProviderOptions {
  /** The folder holding one sandbox per server. @default `.muster/servers` */
  readonly root: string;
  /** Run a `muster agent` process per server. Without it, servers are bare sandboxes. */
  readonly agents?: LocalAgentsOptions;
}

/** The local provider, with control over its agents. */
export interface LocalProvider extends Provider {
  /** Whether servers have agent processes. */
  readonly usesAgents: boolean;
  /**
   * Starts the server's agent unless a live one runs (making the sandbox if missing), and
   * resolves once it has registered.
   *
   * @throws {MusterError} `ORC1506` when the agent exits or does not register in time, with the
   * end of its log
   */
  startAgent(
    server: ProviderServer,
    signal?: AbortSignal,
  ): Promise<{ pid: number; reused: boolean }>;
  /** Drains the server's agent, then kills it after the grace period; false when none ran. */
  stopAgent(server: ProviderServer): Promise<boolean>;
  /** Stops every agent this provider started. */
  stopAgents(): Promise<void>;
  /** The pid of the server's agent, if this provider runs one. */
  agentPid(server: string): number | undefined;
}

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<void>;
}

/** Creates the local provider. */
export function createLocalProvider(options: LocalProviderOptions): LocalProvider {
  const root = resolve(options.root);
  const dir = (server: ProviderServer | string) =>
    join(root, typeof server === 'string' ? server : server.name);
  const agentDir = (server: ProviderServer | string) => join(dir(server), '.muster-agent');
  const pidFile = (server: ProviderServer | string) => join(agentDir(server), 'agent.pid');
  const logFile = (server: ProviderServer | string) => join(agentDir(server), 'agent.log');
  const agents = options.agents;
  const running = new Map<string, Running>();
  const locks = new Map<string, Promise<unknown>>();
  const log = agents?.log ?? (() => {});
  let command: AgentCommand | undefined;

  /** Runs `fn` alone among the agent operations of one server. */
  const locked = <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const previous = locks.get(name) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => {});
    locks.set(name, tail);
    void tail.then(() => {
      if (locks.get(name) === tail) locks.delete(name);
    });
    return next;
  };

  const alive = (r: Running | undefined): r is Running =>
    r !== undefined && r.child.exitCode === null && r.child.signalCode === null;

  /** Stops an agent process: SIGTERM (drain), then SIGKILL after the grace period. */
  const stopPid = async (name: string, pid: number, exited?: Promise<void>): Promise<void> => {
    const grace = agents?.stopGraceMs ?? 10_000;
    signal(pid, 'SIGTERM');
    const gone = exited ? await within(exited, grace) : await waitForExit(pid, name, grace);
    if (!gone) {
      log(`agent of ${name} (pid ${pid}) did not drain within ${grace}ms; killing it`);
      signal(pid, 'SIGKILL');
      if (exited) await exited;
      else await waitForExit(pid, name, 5000);
      await killStrays(dir(name));
    }
  };

  const startAgent = (server: ProviderServer, abort?: AbortSignal) =>
    locked(server.name, async () => {
      if (!agents) throw new MusterError('ORC1506', 'the local provider runs without agents');
      const url = await agents.endpoint();
      const current = running.get(server.name);
      if (alive(current) && current.url === url) {
        const ready = agents
          .waitReady(server.name, agents.startTimeoutMs ?? 30_000, abort)
          .then(() => true);
        // An agent that is draining away is not reused: a new one starts once it has left.
        if (await Promise.race([ready, current.exited.then(() => false)])) {
          return { pid: current.child.pid!, reused: true };
        }
        ready.catch(() => {});
      }
      if (alive(current)) await stopPid(server.name, current.child.pid!, current.exited);
      await mkdir(agentDir(server), { recursive: true });
      const previous = await readPidFile(pidFile(server));
      if (previous && (await isAgentAlive(previous.pid, server.name))) {
        // Left by another orchestrator process: replaced, never shared.
        log(`replacing the agent of ${server.name} left by another process (pid ${previous.pid})`);
        await stopPid(server.name, previous.pid);
      } else if (previous) {
        // It died without stopping its tasks: what they started must not run beside the retry.
        const killed = await killStrays(dir(server));
        if (killed > 0) log(`killed ${killed} process(es) left in ${dir(server)} by a dead agent`);
      }
      command ??=
        agents.command ??
        (await defaultAgentCommand(agents.handlers ? { handlers: agents.handlers } : {}));
      const out = await open(logFile(server), 'a');
      let child: ChildProcess;
      try {
        child = spawn(
          command.command,
          [
            ...command.args,
            'agent',
            '--server',
            server.name,
            '--orchestrator',
            url,
            '--workdir',
            dir(server),
            '--stop-on-stdin-close',
            ...(agents.handlers?.length ? ['--handlers', agents.handlers.join(',')] : []),
          ],
          {
            env: { ...process.env, MUSTER_AGENT_TOKEN: agents.token(server.name) },
            stdio: ['pipe', out.fd, out.fd],
          },
        );
      } finally {
        await out.close();
      }
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.once('error', () => {});
      // Keep the pipe open and out of the event loop's way: it closes when this process exits.
      child.stdin?.on('error', () => {});
      (child.stdin as { unref?: () => void } | null)?.unref?.();
      child.unref();
      const entry: Running = { child, url, exited };
      running.set(server.name, entry);
      void exited.then(() => {
        if (running.get(server.name) === entry) running.delete(server.name);
      });
      if (child.pid === undefined) {
        throw new MusterError(
          'ORC1506',
          `cannot start the agent of local server ${server.name}: ${command.command} did not start`,
        );
      }
      await writePidFile(pidFile(server), {
        pid: child.pid,
        url,
        startedAt: new Date().toISOString(),
      });
      log(`started the agent of ${server.name} (pid ${child.pid})`);
      const timeout = agents.startTimeoutMs ?? 30_000;
      let died: (() => void) | undefined;
      const death = new Promise<never>((_, reject) => {
        died = () =>
          void tailFile(logFile(server)).then((tail) =>
            reject(
              new MusterError(
                'ORC1506',
                `the agent of local server ${server.name} exited with ${
                  child.signalCode ?? `code ${child.exitCode}`
                } before it registered; its log ${logFile(server)} ends with:\n${tail}`,
              ),
            ),
          );
        child.once('exit', died);
      });
      try {
        await Promise.race([agents.waitReady(server.name, timeout, abort), death]);
      } catch (e: unknown) {
        if (child.exitCode === null) await stopPid(server.name, child.pid, exited);
        if (e instanceof MusterError) throw e;
        throw new MusterError(
          'ORC1506',
          `the agent of local server ${server.name} did not register within ${timeout}ms ` +
            `(${e instanceof Error ? e.message : String(e)}); see its log ${logFile(server)}`,
        );
      } finally {
        if (died) child.off('exit', died);
      }
      return { pid: child.pid, reused: false };
    });

  const stopAgent = (server: ProviderServer) =>
    locked(server.name, async () => {
      const current = running.get(server.name);
      let stopped = false;
      if (alive(current)) {
        await stopPid(server.name, current.child.pid!, current.exited);
        stopped = true;
      } else {
        const previous = await readPidFile(pidFile(server));
        if (previous && (await isAgentAlive(previous.pid, server.name))) {
          await stopPid(server.name, previous.pid);
          stopped = true;
        }
      }
      await removePidFile(pidFile(server));
      return stopped;
    });

  const state = async (server: ProviderServer | string): Promise<ServerStatus['state']> => {
    if (!existsSync(dir(server))) return 'absent';
    if (!agents) return 'running';
    const name = typeof server === 'string' ? server : server.name;
    if (alive(running.get(name))) return 'running';
    const previous = await readPidFile(pidFile(server));
    return previous && (await isAgentAlive(previous.pid, name)) ? 'running' : 'stopped';
  };

  const status = async (server: ProviderServer | string): Promise<ServerStatus> => {
    const name = typeof server === 'string' ? server : server.name;
    const s = await state(server);
    return s === 'absent' ? { name, state: s } : { name, state: s, address: '127.0.0.1' };
  };

  return {
    name: 'local',
    usesAgents: agents !== undefined,
    workdir: dir,
    async create(server, abort): Promise<CreateResult> {
      const existed = existsSync(dir(server));
      await mkdir(dir(server), { recursive: true });
      if (agents) await startAgent(server, abort);
      return { created: !existed, address: '127.0.0.1' };
    },
    async delete(server) {
      if (agents) await stopAgent(server);
      await rm(dir(server), { recursive: true, force: true });
    },
    status: (server) => status(server),
    async list() {
      if (!existsSync(root)) return [];
      const entries = await readdir(root, { withFileTypes: true });
      return Promise.all(entries.filter((e) => e.isDirectory()).map((e) => status(e.name)));
    },
    startAgent,
    stopAgent,
    async stopAgents() {
      await Promise.all(
        [...running.keys()].map((name) => stopAgent({ name, labels: {} }).catch(() => false)),
      );
    },
    agentPid: (server) => {
      const r = running.get(server);
      return alive(r) ? r.child.pid : undefined;
    },
  };
}

/** Whether `promise` settles within `ms`; the timer does not outlive it. */
function within(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
