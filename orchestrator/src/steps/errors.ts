/**
 * Errors of step handler registration and loading (thrown in-process, unlike {@link StepFailure},
 * which is data about a failed step).
 *
 * @module
 */
import { OrchestratorError } from '../errors.ts';

/** A handler that cannot be registered: malformed, or its type is taken. */
export class StepRegistryError extends OrchestratorError {
  override readonly name = 'StepRegistryError';
  constructor(
    readonly handlerType: string | undefined,
    message: string,
  ) {
    super('ORC1401', message);
  }
}

/** A `--handlers` module that cannot be loaded or does not export handlers. */
export class HandlerModuleError extends OrchestratorError {
  override readonly name = 'HandlerModuleError';
  constructor(
    readonly modulePath: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('ORC1402', `handler module ${modulePath}: ${message}`, options);
  }
}
