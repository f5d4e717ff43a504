/**
 * Agents for an orchestrator in one process (`muster run`, `muster server`): the hub, a loopback
 * listener its local agents connect to (opened when the first one starts, on a free port), the
 * local provider running a `muster agent` process per server, and the dispatcher that sends the
 * tasks of local servers to them.
 *
 * A task for a local server with no agent starts one (making the sandbox if needed), so a
 * workflow that only updates servers runs as before; an agent killed mid-task is replaced the same
 * way once its task has failed over.
 *
 * @module
 */
import type { Dispatcher } from '../engine/dispatch.ts';
import type { AgentStore } from '../store/agent-store.ts';
import {
  createLocalProvider,
  type AgentCommand,
  type LocalProvider,
} from '../../../providers/local/index.ts';
import { AgentHub, type AgentHubOptions, type DispatchSource } from './hub.ts';
import type { AgentListener } from './ws.ts';
import {
  agentRoute,
  createRemoteDispatcher,
  createRoutingDispatcher,
} from './remote-dispatcher.ts';

/** Options of the agents of an embedded orchestrator. */
export interface EmbeddedAgentsOptions {
  /** Heartbeats, staleness and waiting, for the hub. */
  readonly hub?: Omit<AgentHubOptions, 'store' | 'onAgentNeeded' | 'log'>;
  /** Start a local server's agent when a task needs it and none is connected. @default true */
  readonly autoStart?: boolean;
  /** The command that starts `muster agent`. @default this checkout's lean agent entry */
  readonly command?: AgentCommand;
  /** How long an agent may take to register. @default 30_000 */
  readonly startTimeoutMs?: number;
  /** How long a stopping agent may drain before it is killed. @default 10_000 */
  readonly stopGraceMs?: number;
  /** Where the loopback listener binds. @default '127.0.0.1' */
  readonly host?: string;
  /** Where the hub and the provider say what they do to agents. @default nothing */
  readonly log?: (line: string) => void;
}

/** The agents of an embedded orchestrator. */
export interface EmbeddedAgents {
  readonly hub: AgentHub;
  /** The local provider, running one agent process per server. */
  readonly localProvider: LocalProvider;
  /** The loopback URL local agents connect to; listens on first call. */
  url(): Promise<string>;
  /**
   * The dispatcher: server tasks to agents (but SSH hosts'), everything else to `local`. Tasks
   * for agents go to the hub here, or to `remote` (the shared queue of replicas) when given.
   */
  route(local: Dispatcher, remote?: Dispatcher): Dispatcher;
  /** Closes the hub, stops the local agents, and stops listening. */
  close(): Promise<void>;
}

/** Creates the hub, the loopback listener and the local provider with agents. */
export function createEmbeddedAgents(config: {
  readonly store: AgentStore;
  readonly serversDir: string;
  readonly handlers: readonly string[];
  readonly options?: EmbeddedAgentsOptions;
  /** The shared queue of replicas, which the hub draws its tasks from (PostgreSQL). */
  readonly source?: DispatchSource;
}): EmbeddedAgents {
  const options = config.options ?? {};
  const log = options.log ?? (() => {});
  let listener: Promise<AgentListener> | undefined;
  const hub = new AgentHub({
    ...options.hub,
    store: config.store,
    log,
    ...(config.source ? { source: config.source } : {}),
    ...(options.autoStart === false
      ? {}
      : {
          onAgentNeeded: async (server, assignment) => {
            if (assignment.server?.provider !== 'local') return;
            await localProvider.startAgent({
              name: server,
              labels: assignment.server.labels,
            });
          },
        }),
  });
  const url = (): Promise<string> => {
    // The socket (and `ws`) load with the first agent: a run on the orchestrator alone needs neither.
    listener ??= import('./ws.ts').then(({ listenForAgents }) =>
      listenForAgents(hub, options.host !== undefined ? { host: options.host } : {}),
    );
    listener.catch(() => (listener = undefined));
    return listener.then((l) => l.url);
  };
  const localProvider: LocalProvider = createLocalProvider({
    root: config.serversDir,
    agents: {
      endpoint: url,
      token: (server) => hub.issueToken(server),
      waitReady: (server, timeoutMs, signal) => hub.waitForAgent(server, timeoutMs, signal),
      handlers: config.handlers,
      log,
      ...(options.command ? { command: options.command } : {}),
      ...(options.startTimeoutMs !== undefined ? { startTimeoutMs: options.startTimeoutMs } : {}),
      ...(options.stopGraceMs !== undefined ? { stopGraceMs: options.stopGraceMs } : {}),
    },
  });
  return {
    hub,
    localProvider,
    url,
    route: (local, remote) =>
      createRoutingDispatcher({
        local,
        remote: remote ?? createRemoteDispatcher(hub),
        // SSH hosts run their steps over SSH (providers/ssh); every other server has an agent.
        toAgent: agentRoute({ except: new Set(['ssh']) }),
      }),
    async close() {
      // Agents drain first (they are idle unless a run was cut short), then the door closes.
      await localProvider.stopAgents();
      await hub.close();
      const l = await listener?.catch(() => undefined);
      await l?.close();
    },
  };
}
