import { describe, expect, test } from 'vitest';
import { retryDelayMs } from './backoff.ts';

const policy = { max_attempts: 5, initial_delay: 2, max_delay: 10, non_retryable: [] };

describe('retryDelayMs', () => {
  test('linear grows by the initial delay and stops at max_delay', () => {
    const p = { ...policy, backoff: 'linear' as const };
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelayMs(p, a))).toEqual([
      2000, 4000, 6000, 8000, 10000, 10000,
    ]);
  });
  test('exponential doubles and stops at max_delay', () => {
    const p = { ...policy, backoff: 'exponential' as const };
    expect([1, 2, 3, 4].map((a) => retryDelayMs(p, a))).toEqual([2000, 4000, 8000, 10000]);
  });
});
