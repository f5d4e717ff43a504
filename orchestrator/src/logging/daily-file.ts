/**
 * A log destination that writes one file per day (`muster-2025-01-31.log`, UTC) and deletes the
 * files older than the retention period whenever it opens a new day's file. Writes are
 * synchronous appends, so a crash loses no line that was logged.
 *
 * @module
 */
import { closeSync, constants, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Options of {@link createDailyFileDestination}. */
export interface DailyFileOptions {
  /** The directory; created when missing. */
  readonly dir: string;
  /** Files older than this many days (today counting as one) are deleted. */
  readonly retentionDays: number;
  /** @default 'muster' */
  readonly prefix?: string;
  /** @default Date.now */
  readonly now?: () => number;
  /**
   * Open the day's file when it is a symbolic link. `muster server` says no, so that a link
   * planted in a run's log directory cannot send the server's writes elsewhere.
   *
   * @default true
   */
  readonly followSymlinks?: boolean;
}

/** Flags of a day's file that is never a symbolic link: `a`, and `O_NOFOLLOW`. */
const APPEND_NO_FOLLOW =
  constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/** A destination pino (or anything) writes lines to. */
export interface DailyFileDestination {
  /** Appends text (one or more whole lines) to today's file. */
  write(text: string): void;
  /** The file written to now. */
  readonly file: string;
  /** Closes the file (a later write opens it again). */
  close(): void;
}

/** `muster-2025-01-31.log` → `2025-01-31`. */
function fileDate(name: string, prefix: string): string | undefined {
  const m = new RegExp(`^${prefix}-(\\d{4}-\\d{2}-\\d{2})\\.log$`).exec(name);
  return m?.[1];
}

/**
 * Creates a daily-rotated, retention-pruned log file destination.
 *
 * @example
 * ```ts
 * const dest = createDailyFileDestination({ dir: './logs/workflows', retentionDays: 30 });
 * const logger = pino({}, dest);
 * ```
 */
export function createDailyFileDestination(options: DailyFileOptions): DailyFileDestination {
  const prefix = options.prefix ?? 'muster';
  const now = options.now ?? Date.now;
  let day = '';
  let fd: number | undefined;
  let file = '';
  const open = () => {
    const today = new Date(now()).toISOString().slice(0, 10);
    if (today === day && fd !== undefined) return;
    if (fd !== undefined) closeSync(fd);
    // Forgotten at once: should the next open fail, no write may reach a number the kernel has
    // since given to another file.
    fd = undefined;
    mkdirSync(options.dir, { recursive: true });
    day = today;
    file = join(options.dir, `${prefix}-${today}.log`);
    fd = openSync(file, options.followSymlinks === false ? APPEND_NO_FOLLOW : 'a', 0o640);
    prune(today);
  };
  const prune = (today: string) => {
    const oldest = new Date(
      Date.parse(`${today}T00:00:00Z`) - (options.retentionDays - 1) * 86_400_000,
    )
      .toISOString()
      .slice(0, 10);
    for (const name of readdirSync(options.dir)) {
      const date = fileDate(name, prefix);
      if (date !== undefined && date < oldest) rmSync(join(options.dir, name), { force: true });
    }
  };
  open();
  return {
    write(text: string) {
      open();
      writeSync(fd!, text);
    },
    get file() {
      return file;
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
