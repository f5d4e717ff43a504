/**
 * Agent test helpers: an orchestrator whose local servers are real agent processes, real
 * `muster agent` processes started by hand, a TCP proxy to cut the network between an agent and
 * the orchestrator, and the step log that agents write and tests read.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, Socket, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { WorkflowSchema, type WorkflowInput } from '../../../schemas/src/workflow.ts';
import { planWorkflow } from '../../src/plan/index.ts';
import {
  createOrchestrator,
  type Orchestrator,
  type OrchestratorInternals,
} from '../../src/orchestrator.ts';
import type { EmbeddedAgentsOptions } from '../../src/agents/embedded.ts';
import type { AgentHub, AgentHubEvent } from '../../src/agents/hub.ts';
import type { RunStatus } from '../../src/engine/types.ts';
import { MUSTER_NODE_ARGS } from './cli.ts';
import { musterNodeArgs } from '../../../scripts/muster-entry.ts';

/** Timings short enough for tests: heartbeats every 100 ms, lost after 1.2 s of silence. */
export const FAST_AGENTS: EmbeddedAgentsOptions = {
  hub: { heartbeatMs: 100, staleAfterMs: 1200, agentWaitMs: 30_000 },
  stopGraceMs: 5000,
};

/** An orchestrator on a fresh state directory, and what tests need around it. */
export interface Fleet {
  readonly orchestrator: Orchestrator;
  readonly hub: AgentHub;
  readonly dir: string;
  /** Every hub event so far. */
  readonly events: AgentHubEvent[];
  /** Plans and submits a workflow, drives it; resolves with its id once it is under way. */
  start(input: WorkflowInput): Promise<string>;
  /** Runs a workflow to its end (or to a pause), with its final status. */
  run(input: WorkflowInput): Promise<{ runId: string; status: RunStatus }>;
  /** The pid in a local server's agent pid file. */
  agentPid(server: string): Promise<number | undefined>;
  /** Resolves when the run ends, pauses or rolls back. */
  settled(runId: string, statuses?: readonly RunStatus[]): Promise<RunStatus>;
  close(): Promise<void>;
}

/** Starts an orchestrator with agents for its local servers. */
export async function startFleet(
  agents: EmbeddedAgentsOptions = FAST_AGENTS,
  internals: Omit<OrchestratorInternals, 'agents'> = {},
): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'muster-agents-'));
  const orchestrator = await createOrchestrator(
    { stateDir: join(dir, 'state') },
    { ...internals, agents },
  );
  const hub = orchestrator.agents!;
  const events: AgentHubEvent[] = [];
  hub.subscribe((e) => events.push(e));
  const statuses = new Map<string, RunStatus>();
  const watchers = new Set<() => void>();
  orchestrator.subscribe((e) => {
    const status = RUN_EVENT_STATUS[e.type];
    if (status) statuses.set(e.runId, status);
    for (const w of watchers) w();
  });
  const settled = (runId: string, wanted: readonly RunStatus[] = SETTLED) =>
    new Promise<RunStatus>((resolve) => {
      const check = () => {
        const s = statuses.get(runId);
        if (s && wanted.includes(s)) {
          watchers.delete(check);
          resolve(s);
        }
      };
      watchers.add(check);
      check();
    });
  const start = async (input: WorkflowInput) => {
    const workflow = v.parse(WorkflowSchema, input);
    const { run } = await orchestrator.submit(workflow, planWorkflow(workflow));
    await orchestrator.drive(run.id);
    return run.id;
  };
  return {
    orchestrator,
    hub,
    dir,
    events,
    start,
    async run(input) {
      const runId = await start(input);
      return { runId, status: await settled(runId) };
    },
    settled,
    async agentPid(server) {
      const file = join(dir, 'state', 'servers', server, '.muster-agent', 'agent.pid');
      try {
        return (JSON.parse(await readFile(file, 'utf8')) as { pid: number }).pid;
      } catch {
        return undefined;
      }
    },
    async close() {
      await orchestrator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const SETTLED: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled', 'rolled_back', 'paused'];

const RUN_EVENT_STATUS: Partial<Record<string, RunStatus>> = {
  'run:succeeded': 'succeeded',
  'run:failed': 'failed',
  'run:cancelled': 'cancelled',
  'run:rolled_back': 'rolled_back',
  'run:paused': 'paused',
  'run:resumed': 'running',
  'run:rolling_back': 'rolling_back',
};

/** `web-1` … `web-N` on the local provider. */
export function localServers(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    name: `web-${i + 1}`,
    provider: 'local' as const,
  }));
}

/**
 * A script step that appends `start SERVER ATTEMPT AGENT_PID MS` to `log`, sleeps, fails on the
 * servers in `failOn`, and appends `end …`. `$PPID` of the shell is the agent that ran it.
 */
export function loggedStep(log: string, options: { sleep?: number; failOn?: string[] } = {}) {
  const fail = options.failOn?.length
    ? `case "$MUSTER_SERVER" in ${options.failOn.join('|')}) exit 7;; esac; `
    : '';
  const line = (what: string) =>
    `echo "${what} $MUSTER_SERVER $MUSTER_ATTEMPT $PPID $(date +%s%3N)" >> '${log}'`;
  return {
    name: 'work',
    type: 'script' as const,
    params: {
      command: 'sh',
      args: ['-c', `${line('start')}; sleep ${options.sleep ?? 0.3}; ${fail}${line('end')}`],
    },
  };
}

/** A line of the step log. */
export interface LogLine {
  readonly what: string;
  readonly server: string;
  readonly attempt: number;
  readonly pid: number;
  readonly at: number;
}

/** Reads the step log. */
export async function readLog(log: string): Promise<LogLine[]> {
  let text: string;
  try {
    text = await readFile(log, 'utf8');
  } catch {
    return [];
  }
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [what, server, attempt, pid, at] = l.split(' ');
      return {
        what: what!,
        server: server!,
        attempt: Number(attempt),
        pid: Number(pid),
        at: Number(at),
      };
    });
}

/** Polls until `check` holds. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A `muster agent` process started by a test. */
export interface AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Its stderr so far. */
  readonly output: () => string;
  /** Resolves with its exit code. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `muster agent` as a real process: through the full CLI (`main.ts`) or the lean entry the
 * local provider uses.
 */
export function spawnAgent(options: {
  server: string;
  url: string;
  token: string;
  workdir: string;
  entry?: 'main' | 'lean';
}): AgentProcess {
  const args = options.entry === 'main' ? [...MUSTER_NODE_ARGS] : musterNodeArgs('agent');
  const child = spawn(
    process.execPath,
    [
      ...args,
      'agent',
      '--server',
      options.server,
      '--orchestrator',
      options.url,
      '--workdir',
      options.workdir,
    ],
    {
      env: { ...process.env, MUSTER_AGENT_TOKEN: options.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, pid: child.pid!, output: () => output, exited };
}

/**
 * A TCP proxy between agents and the orchestrator, on loopback: `cut()` drops every connection
 * and refuses new ones until `restore()`; `blackhole()` keeps connections open but silently
 * drops what they carry (both ways, or only the orchestrator's side) until `restore()`.
 */
export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private refusing = false;
  private holed: 'both' | 'down' | undefined;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<TcpProxy> {
    const { hostname, port } = new URL(target);
    const server = createServer((client) => proxy.accept(client, hostname, Number(port)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new TcpProxy(
      server,
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    );
    return proxy;
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('data', (d) => {
      if (this.holed !== 'both') upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!this.holed) client.write(d);
    });
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
    upstream.connect(port, host);
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.refusing = true;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Keeps connections open but lets nothing through (`down`: nothing from the orchestrator). */
  blackhole(direction: 'both' | 'down' = 'both'): void {
    this.holed = direction;
  }

  /** Lets connections through again. */
  restore(): void {
    this.refusing = false;
    this.holed = undefined;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
