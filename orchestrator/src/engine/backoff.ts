/**
 * Retry delays.
 *
 * @module
 */
import type { RetryPolicy } from '../../../schemas/src/workflow.ts';

/**
 * The delay before attempt `attempt + 1`, after `attempt` failed (1-based), in milliseconds.
 *
 * Linear: `initial_delay × attempt`; exponential: `initial_delay × 2^(attempt-1)`; both capped at
 * `max_delay`.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  const n = Math.max(1, attempt);
  const seconds =
    policy.backoff === 'linear' ? policy.initial_delay * n : policy.initial_delay * 2 ** (n - 1);
  return Math.round(Math.min(seconds, policy.max_delay) * 1000);
}
