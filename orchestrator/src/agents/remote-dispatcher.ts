/**
 * Dispatching to agents, and composing it with the in-process executor: a task on a `server:NAME`
 * queue goes to that server's agent (a local server's, started by the local provider, or one
 * running on a remote server); provider and orchestrator queues stay in process.
 *
 * @module
 */
import type { Dispatcher, TaskAssignment } from '../engine/dispatch.ts';
import type { AgentHub } from './hub.ts';

/** Creates the dispatcher that sends each task to its server's agent through the hub. */
export function createRemoteDispatcher(hub: AgentHub): Dispatcher {
  return { dispatch: (assignment, hooks) => hub.dispatch(assignment, hooks) };
}

/** Options of {@link createRoutingDispatcher}. */
export interface RoutingDispatcherOptions {
  /** Runs what stays in process. */
  readonly local: Dispatcher;
  /** Runs what goes to agents. */
  readonly remote: Dispatcher;
  /** Whether an assignment goes to an agent. */
  readonly toAgent: (assignment: TaskAssignment) => boolean;
}

/** Creates a dispatcher that sends each assignment to the local or the remote one. */
export function createRoutingDispatcher(options: RoutingDispatcherOptions): Dispatcher {
  const pick = (assignment: TaskAssignment) =>
    options.toAgent(assignment) ? options.remote : options.local;
  const canReattach = options.local.reattach ?? options.remote.reattach;
  return {
    dispatch: (assignment, hooks) => pick(assignment).dispatch(assignment, hooks),
    ...(canReattach
      ? { reattach: async (assignment, hooks) => pick(assignment).reattach?.(assignment, hooks) }
      : {}),
  };
}

/**
 * The usual route: a task on a server queue goes to the server's agent, unless the server's
 * provider runs steps itself (`ssh` runs them over SSH).
 *
 * @example
 * ```ts
 * const toAgent = agentRoute({ except: new Set(['ssh']) });
 * toAgent(assignment); // true for `server:web-1` of a local or cloud server
 * ```
 */
export function agentRoute(options: {
  readonly except: ReadonlySet<string>;
}): (assignment: TaskAssignment) => boolean {
  return (a) =>
    a.task.queue.startsWith('server:') &&
    a.server !== undefined &&
    !options.except.has(a.server.provider);
}
