import { DrizzleQueryError } from 'drizzle-orm/errors';
import { describe, expect, test } from 'vitest';
import { StoreError } from './errors.ts';

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
