/**
 * Engine errors.
 *
 * @module
 */
import { MusterError } from '../../../schemas/src/problems.ts';

/** A request the engine cannot carry out in the run's current state, or a broken run. */
export class EngineError extends MusterError {
  override readonly name = 'EngineError';
}
