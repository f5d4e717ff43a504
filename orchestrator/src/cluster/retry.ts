/**
 * Trying a store write again while the database is away (a restart, a failover): what a replica
 * relays for another must not be dropped because PostgreSQL blinked.
 *
 * @module
 */
import { coerceError } from '../errors.ts';

/** Options of {@link retrying}. */
export interface RetryingOptions {
  /** What is tried, for the log: "relay the report of TASK". */
  readonly what: string;
  readonly log: (line: string) => void;
  /** Gives up when it returns true (the process is stopping). */
  readonly stopped?: () => boolean;
  /** Gives up after this long. @default 120_000 */
  readonly maxMs?: number;
}

/**
 * Calls `fn` until it succeeds: after 100 ms, doubling up to 2 s between tries. Logs the first
 * failure and the recovery, not every try.
 *
 * @throws the last error, once stopped or out of time
 */
export async function retrying<T>(fn: () => Promise<T>, options: RetryingOptions): Promise<T> {
  const deadline = Date.now() + (options.maxMs ?? 120_000);
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await fn();
      if (attempt > 1) options.log(`could ${options.what} after ${attempt} tries`);
      return value;
    } catch (e: unknown) {
      if (options.stopped?.() || Date.now() + delay > deadline) throw e;
      if (attempt === 1) {
        options.log(`could not ${options.what} (${coerceError(e).message}); trying again`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(2000, delay * 2);
    }
  }
}
