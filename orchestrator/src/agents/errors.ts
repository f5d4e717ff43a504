/**
 * Errors of agents and the agent hub (codes `ORC15xx`), and the failure types a dispatch to an
 * agent can end with.
 *
 * @module
 */
import { OrchestratorError } from '../errors.ts';

/**
 * Failure types of tasks sent to agents. All are retryable: the engine retries them by the task's
 * retry policy, like any other failure.
 */
export const AGENT_FAILURE = {
  /** The agent went silent (killed, cut off) or was replaced while it ran the task. */
  lost: 'agent-lost',
  /** No agent for the task's server connected in time. */
  unavailable: 'agent-unavailable',
  /** The orchestrator could not start the server's agent. */
  startFailed: 'agent-start-failed',
  /** The orchestrator shut down before the task was done. */
  shutdown: 'interrupted',
} as const;

/** An agent was refused, or misconfigured. */
export class AgentError extends OrchestratorError {
  override readonly name: string = 'AgentError';
}

/** The agent's token was missing, unknown, or bound to another server. */
export class AgentAuthError extends AgentError {
  override readonly name = 'AgentAuthError';
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(closeCode === 4401 ? 'ORC1502' : 'ORC1503', message);
  }
}

/** Another agent serves the server: this one was replaced or came second. */
export class AgentSupersededError extends AgentError {
  override readonly name = 'AgentSupersededError';
  constructor(message: string) {
    super('ORC1504', message);
  }
}

/** The hub and the agent disagree on the protocol. */
export class AgentProtocolError extends AgentError {
  override readonly name = 'AgentProtocolError';
  constructor(message: string) {
    super('ORC1501', message);
  }
}

/** A local agent process did not start. */
export class AgentStartError extends AgentError {
  override readonly name = 'AgentStartError';
  constructor(
    readonly server: string,
    message: string,
  ) {
    super('ORC1506', message);
  }
}

/** An agent's options are wrong (a bad URL, a missing token). */
export class AgentConfigError extends AgentError {
  override readonly name = 'AgentConfigError';
  constructor(message: string) {
    super('ORC1507', message);
  }
}
