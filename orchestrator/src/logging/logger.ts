/**
 * Workflow logs with pino, as a workflow's `logging` block says: `level`, `format` (`json` lines,
 * or `text` for people), `destinations` (`file`: daily files under `path`, pruned after
 * `retention_days`; `stdout`), each line carrying the bindings it is given (run id, trace id).
 *
 * @module
 */
import { resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Logging } from '../../../schemas/src/workflow.ts';
import {
  createDailyFileDestination,
  type DailyFileDestination,
  type DailyFileOptions,
} from './daily-file.ts';
import { formatText } from './text-format.ts';

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Fields on every line (e.g. `run_id`, `trace_id`). */
  readonly bindings?: Readonly<Record<string, unknown>>;
  /** Where the `stdout` destination writes. @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** Relative `path`s resolve against it. @default process.cwd() */
  readonly cwd?: string;
  /** Applied to every line before it is written (the secrets redactor's `text`). */
  readonly redact?: (line: string) => string;
  /** @default Date.now */
  readonly now?: () => number;
  /**
   * Opens the `file` destination (`muster server` shares one file per directory among its runs,
   * and opens none through a symbolic link).
   *
   * @default createDailyFileDestination
   */
  readonly openFile?: (options: DailyFileOptions) => DailyFileDestination;
}

/** A logger and what it writes to. */
export interface WorkflowLogger {
  readonly logger: Logger;
  /** The log file written to now, when `file` is a destination. */
  readonly file: string | undefined;
  /** Flushes and closes the files. */
  close(): void;
}

/**
 * Creates a logger for a workflow's `logging` block.
 *
 * @param logging The workflow's logging block (defaults filled in).
 * @param options Bindings, the stdout stream, the working directory.
 * @returns The pino logger and a `close`.
 * @example
 * ```ts
 * const { logger, close } = createLogger(workflow.logging, { bindings: { run_id: id } });
 * logger.info({ task: 'deploy:web@web-1' }, 'task started');
 * close();
 * ```
 */
export function createLogger(logging: Logging, options: CreateLoggerOptions = {}): WorkflowLogger {
  const now = options.now ?? Date.now;
  const file: DailyFileDestination | undefined = logging.destinations.includes('file')
    ? (options.openFile ?? createDailyFileDestination)({
        dir: resolve(options.cwd ?? process.cwd(), logging.path),
        retentionDays: logging.retention_days,
        now,
      })
    : undefined;
  const stdout = logging.destinations.includes('stdout')
    ? (options.stdout ?? process.stdout)
    : undefined;
  const redact = options.redact ?? ((l: string) => l);
  const destination = {
    write(json: string) {
      const line = redact(logging.format === 'text' ? formatText(json) : json);
      file?.write(line);
      stdout?.write(line);
    },
  };
  const logger = pino(
    {
      level: logging.level,
      base: { ...options.bindings },
      timestamp: () => `,"time":"${new Date(now()).toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return {
    logger,
    get file() {
      return file?.file;
    },
    close() {
      file?.close();
    },
  };
}
