import { DrizzleQueryError } from 'drizzle-orm/errors';
import { describe, expect, test } from 'vitest';
import { LeaseLostError, StoreError, storeOperation } from './errors.ts';

/** What the postgres and PGlite drivers throw: a message and a SQLSTATE. */
function driverFailure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('StoreError', () => {
  test("says the driver's reason when drizzle wraps it with the query", () => {
    const wrapped = new DrizzleQueryError(
      'insert into "runs" ("id", "plan") values ($1, $2)',
      ['r1', '{"huge": "plan"}'],
      driverFailure('out of memory', '53200'),
    );
    const error = new StoreError('createRun', wrapped);
    expect(error.message).toBe('[ORC1101] the store failed to createRun: out of memory');
    expect(error.message).not.toContain('insert');
    expect(error.sqlState).toBe('53200');
    expect(error.retryable).toBe(false);
    expect(error.cause).toBe(wrapped);
  });

  test('a serialization failure under drizzle is retryable', () => {
    const wrapped = new DrizzleQueryError(
      'update "tasks" set "status" = $1',
      ['running'],
      driverFailure('could not serialize access due to concurrent update', '40001'),
    );
    expect(new StoreError('commit', wrapped).retryable).toBe(true);
  });

  test('an unwrapped driver error keeps its first line', () => {
    const error = new StoreError('listRuns', driverFailure('connection refused\nat …', '08006'));
    expect(error.message).toBe('[ORC1101] the store failed to listRuns: connection refused');
    expect(error.retryable).toBe(true);
  });
});

describe('storeOperation', () => {
  test("names the operation in a driver's failure; the store's own errors pass as they are", async () => {
    await expect(storeOperation('claimTasks', async () => 7)).resolves.toBe(7);
    const failed = storeOperation('claimTasks', () =>
      Promise.reject(driverFailure('connection refused', '08006')),
    );
    await expect(failed).rejects.toThrow(StoreError);
    await expect(failed).rejects.toThrow('the store failed to claimTasks: connection refused');
    const lost = new LeaseLostError('r1', 'replica-a');
    await expect(storeOperation('commit', () => Promise.reject(lost))).rejects.toBe(lost);
    const own = new StoreError(
      'listRuns',
      new Error('bad cursor'),
      'the cursor is not one this server returned',
    );
    await expect(storeOperation('listRuns', () => Promise.reject(own))).rejects.toBe(own);
  });
});
