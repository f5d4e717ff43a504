/**
 * The orchestrator's typed errors. Each has a stable code; the CLI and the API map codes to exit
 * codes and HTTP statuses in one place.
 *
 * @module
 */
import { MusterError } from '../../schemas/src/problems.ts';

export { MusterError, InvalidWorkflowError } from '../../schemas/src/problems.ts';

/** Base of the orchestrator's errors. */
export class OrchestratorError extends MusterError {
  override readonly name: string = 'OrchestratorError';
}

/** No run has this id. */
export class RunNotFoundError extends OrchestratorError {
  override readonly name = 'RunNotFoundError';
  constructor(readonly runId: string) {
    super('ORC1001', `no run with id "${runId}"; list runs with \`muster batch list\``);
  }
}

/** The run is in a state that does not allow the requested action. */
export class InvalidRunStateError extends OrchestratorError {
  override readonly name = 'InvalidRunStateError';
  constructor(
    readonly runId: string,
    readonly state: string,
    readonly action: string,
  ) {
    super('ORC1002', `cannot ${action} run "${runId}" while it is ${state}`);
  }
}

/** Reads `.message` safely from anything thrown. */
export function coerceError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(typeof e === 'string' ? e : JSON.stringify(e));
}
