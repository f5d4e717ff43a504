/**
 * Daily log files shared by the logs that write to one directory: a process that drives many
 * runs at once (`muster server`) holds one descriptor per log directory, not one per run, and
 * the file is closed when the last run writing there lets go of it.
 *
 * @module
 */
import { resolve } from 'node:path';
import {
  createDailyFileDestination,
  type DailyFileDestination,
  type DailyFileOptions,
} from './daily-file.ts';

/** Shared daily files, counted by user. */
export interface DailyFilePool {
  /**
   * A handle on the daily file of `options.dir` (shared with the other handles on the same
   * directory, prefix and retention). Its `close` lets go of the file; writes after it are
   * dropped, so a late event can never reopen a file nobody will close.
   */
  open(options: DailyFileOptions): DailyFileDestination;
  /** How many files are open. */
  readonly size: number;
  /** Closes every file. */
  close(): void;
}

interface Shared {
  readonly destination: DailyFileDestination;
  users: number;
}

/**
 * Creates a pool of shared daily files.
 *
 * @example
 * ```ts
 * const pool = createDailyFilePool();
 * const logger = createLogger(logging, { openFile: pool.open });
 * ```
 */
export function createDailyFilePool(): DailyFilePool {
  const files = new Map<string, Shared>();
  return {
    open(options) {
      const key = JSON.stringify([
        resolve(options.dir),
        options.prefix ?? 'muster',
        options.retentionDays,
        options.followSymlinks ?? true,
      ]);
      let shared = files.get(key);
      if (!shared) {
        shared = { destination: createDailyFileDestination(options), users: 0 };
        files.set(key, shared);
      }
      shared.users++;
      const held = shared;
      let released = false;
      return {
        write(text) {
          if (!released) held.destination.write(text);
        },
        get file() {
          return held.destination.file;
        },
        close() {
          if (released) return;
          released = true;
          held.users--;
          if (held.users === 0) {
            held.destination.close();
            if (files.get(key) === held) files.delete(key);
          }
        },
      };
    },
    get size() {
      return files.size;
    },
    close() {
      for (const shared of files.values()) shared.destination.close();
      files.clear();
    },
  };
}
