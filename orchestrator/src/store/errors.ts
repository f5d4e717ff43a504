/**
 * Store errors: driver failures wrapped with the operation, the original kept as `cause`, and no
 * SQL in the message, so nothing of the database reaches an API client.
 *
 * @module
 */
import { OrchestratorError, coerceError } from '../errors.ts';

/** SQLSTATEs worth retrying: serialization failure, deadlock, cannot connect now, admin shutdown. */
export const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set([
  '40001',
  '40P01',
  '57P01',
  '57P03',
  '08000',
  '08003',
  '08006',
]);

/** A store operation failed. */
export class StoreError extends OrchestratorError {
  override readonly name = 'StoreError';
  readonly sqlState: string | undefined;
  constructor(
    readonly operation: string,
    cause: unknown,
    message?: string,
  ) {
    const reason = driverError(cause);
    const err = coerceError(reason);
    const sqlState = (reason as { code?: unknown } | null)?.code;
    super('ORC1101', message ?? `the store failed to ${operation}: ${firstLine(err.message)}`, {
      cause,
    });
    this.sqlState = typeof sqlState === 'string' ? sqlState : undefined;
  }

  /** Whether trying again may succeed. */
  get retryable(): boolean {
    return this.sqlState !== undefined && RETRYABLE_SQLSTATES.has(this.sqlState);
  }
}

/** Another driver took the run over: this one must stop writing. */
export class LeaseLostError extends OrchestratorError {
  override readonly name = 'LeaseLostError';
  constructor(
    readonly runId: string,
    readonly owner: string,
  ) {
    super(
      'ORC1102',
      `run "${runId}" is no longer driven by "${owner}": another driver took it over`,
    );
  }
}

/** The embedded database is open in another process. */
export class StoreLockedError extends OrchestratorError {
  override readonly name = 'StoreLockedError';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      'ORC1103',
      `the embedded database ${dataDir} is in use by process ${pid}; wait for it to finish, ` +
        'or point DATABASE_URL at PostgreSQL to run several processes at once',
    );
  }
}

/**
 * Runs one store operation: a driver's error reaches the caller as a {@link StoreError} naming
 * what failed (`the store failed to claim tasks: …`); the store's own errors pass as they are.
 *
 * @param operation What the store was doing, e.g. `claim tasks`.
 * @param run The queries.
 * @returns What `run` returns.
 */
export async function storeOperation<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e: unknown) {
    if (e instanceof StoreError || e instanceof LeaseLostError) throw e;
    throw new StoreError(operation, e);
  }
}

function firstLine(s: string): string {
  // Drivers put the failed query first; keep only the reason.
  const m = /^Failed query: [\s\S]*?\nparams: .*\n?/.exec(s);
  const rest = m ? s.slice(m[0].length) : s;
  return rest.split('\n')[0] ?? rest;
}

/**
 * The driver's own error: drizzle wraps it in a `DrizzleQueryError` whose message is only the
 * query and its parameters, and whose `cause` holds the reason and the SQLSTATE.
 */
function driverError(cause: unknown): unknown {
  let error = cause;
  for (let depth = 0; depth < 4; depth++) {
    if (!(error instanceof Error) || !error.message.startsWith('Failed query: ')) break;
    if (error.cause === undefined) break;
    error = error.cause;
  }
  return error;
}
