/**
 * Per-operation policies resolved against the workflow's: retry (field-by-field override) and
 * rollout (the operation's own, or one derived from `parallel` with the schema's defaults).
 *
 * @module
 */
import * as v from 'valibot';
import {
  RolloutSchema,
  type Operation,
  type RetryPolicy,
  type Rollout,
} from '../../../schemas/src/workflow.ts';

// Parsed once: every operation without a rollout shares one of these (plans are read-only).
const PARALLEL_ROLLOUT: Rollout = Object.freeze(v.parse(RolloutSchema, { strategy: 'parallel' }));
const SEQUENTIAL_ROLLOUT: Rollout = Object.freeze(
  v.parse(RolloutSchema, { strategy: 'sequential' }),
);

/**
 * The workflow's retry policy with an operation's override applied field by field.
 *
 * @param base The workflow's policy (defaults filled).
 * @param override The operation's `retry_policy`, if any.
 * @returns `base` itself when there is nothing to override, else a new policy.
 */
export function mergeRetryPolicy(
  base: RetryPolicy,
  override: Operation['retry_policy'],
): RetryPolicy {
  if (override === undefined) return base;
  return {
    max_attempts: override.max_attempts ?? base.max_attempts,
    backoff: override.backoff ?? base.backoff,
    initial_delay: override.initial_delay ?? base.initial_delay,
    max_delay: override.max_delay ?? base.max_delay,
    non_retryable: override.non_retryable ?? base.non_retryable,
  };
}

/**
 * The rollout of an operation: its own, else `parallel` or `sequential` from its `parallel` flag.
 *
 * @param operation The operation (valibot output).
 * @returns The rollout with every default filled.
 */
export function resolveRollout(operation: Operation): Rollout {
  if (operation.rollout !== undefined) return operation.rollout;
  return operation.parallel ? PARALLEL_ROLLOUT : SEQUENTIAL_ROLLOUT;
}
