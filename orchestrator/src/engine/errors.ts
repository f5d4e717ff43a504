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

/**
 * Why a driver aborts what runs when it must stop deciding (its lease or its store is gone): a
 * task dispatched to another process keeps running, for whoever drives the run next to re-attach
 * to; a task running in this process is stopped.
 */
export class DriverStoppedError extends MusterError {
  override readonly name = 'DriverStoppedError';
  constructor(
    readonly runId: string,
    cause: unknown,
  ) {
    super(
      'ORC1206',
      `the driver of run "${runId}" stopped: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** Whether an abort reason says the driver stopped (rather than the task being cancelled). */
export function isDriverStop(reason: unknown): reason is DriverStoppedError {
  return reason instanceof DriverStoppedError;
}
