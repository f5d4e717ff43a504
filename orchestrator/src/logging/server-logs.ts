/**
 * Run logs under `muster server`: each run's events go to the logs its workflow's `logging`
 * block describes, as `muster run` writes them, except where the files may go.
 *
 * A workflow comes over the API, so its `logging.path` must not pick where the server writes.
 * The rule: `logging.path` is relative to the server's log directory (`--log-dir`, by default
 * `<state-dir>/logs`) and stays inside it. An absolute path, or one whose `..` climbs out, is
 * refused when the workflow is submitted, validated or dry-run ({@link checkServerLogging}). When
 * a run's logs open, a directory on the way that is a symbolic link leading out is refused too,
 * and the day's file is never opened through a link; such a run logs to its other destinations,
 * and the server's own log says why.
 *
 * The `stdout` destination writes to the server's stdout (its own messages go to stderr). Runs
 * writing to one directory share its daily file, so the server holds one descriptor per
 * directory; the logs of a run close when it ends, pauses or goes quiet.
 *
 * @module
 */
import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { LoadedWorkflow } from '../../../schemas/src/load.ts';
import { InvalidWorkflowError, type Problem } from '../../../schemas/src/problems.ts';
import type { Logging } from '../../../schemas/src/workflow.ts';
import type { RunEvent } from '../engine/types.ts';
import { createDailyFilePool } from './file-pool.ts';
import { createRunLogs, type RunLogs, type RunLogsSource } from './run-logs.ts';

/** The problem code of a `logging.path` the server refuses. */
export const LOG_PATH_PROBLEM = 'logging-path';

/**
 * Why `muster server` refuses a `logging.path`, or nothing when it is a relative path that stays
 * inside the log directory. Lexical: the same answer whatever the log directory is.
 *
 * @param path The workflow's `logging.path`.
 * @returns The reason, to follow `logging.path "…"`, or `undefined`.
 */
export function logPathProblem(path: string): string | undefined {
  if (path.includes('\0')) return 'holds a NUL character';
  if (isAbsolute(path) || /^[A-Za-z]:[\\/]|^\\\\/.test(path)) return 'is absolute';
  const base = resolve(sep, 'log-dir');
  if (!inside(base, resolve(base, path))) return "climbs out of the server's log directory";
  return undefined;
}

/**
 * Refuses a workflow whose logs `muster server` may not write where it says.
 *
 * @param loaded The workflow as loaded from the request, with its locator.
 * @throws {InvalidWorkflowError} `MUS2001` with a `logging-path` problem at `logging.path`.
 */
export function checkServerLogging(loaded: LoadedWorkflow): void {
  const { logging } = loaded.workflow;
  if (!logging.destinations.includes('file')) return;
  const reason = logPathProblem(logging.path);
  if (reason === undefined) return;
  const at = loaded.locate('logging.path');
  const problem: Problem = {
    code: LOG_PATH_PROBLEM,
    path: 'logging.path',
    message: `the server keeps run logs in its log directory, and this path ${reason}`,
    file: loaded.file,
    ...(at ? { line: at.line, ...(at.column !== undefined ? { column: at.column } : {}) } : {}),
    expected: "a relative path inside the server's log directory",
    received: JSON.stringify(logging.path),
    hint: `write it relative and without a leading "..", e.g. "${suggestion(logging.path)}"; muster server resolves it under its --log-dir`,
  };
  throw new InvalidWorkflowError([problem], loaded.file);
}

/**
 * Where a run's log files go under the server: `path` resolved in `logDir`, once it is known to
 * stay there. The log directory is made when missing.
 *
 * @param logDir The server's log directory.
 * @param path The workflow's `logging.path`.
 * @returns The directory, or why it may not be written.
 */
export function confineLogPath(
  logDir: string,
  path: string,
): { readonly dir: string } | { readonly refused: string } {
  const reason = logPathProblem(path);
  if (reason !== undefined) return { refused: reason };
  const base = resolve(logDir);
  mkdirSync(base, { recursive: true });
  const root = realpathSync(base);
  const dir = resolve(base, path);
  // The nearest part that exists must be inside once links are followed: the directories still
  // to be made are then made inside too.
  let existing = dir;
  while (existing !== base && !exists(existing)) existing = dirname(existing);
  let real: string;
  try {
    real = realpathSync(existing);
  } catch {
    return { refused: 'goes through a broken symbolic link' };
  }
  if (!inside(root, real)) {
    return { refused: "goes through a symbolic link out of the server's log directory" };
  }
  return { dir };
}

/** Options of {@link createServerRunLogs}. */
export interface ServerRunLogsOptions {
  /** The server's log directory: every run's files go inside it. */
  readonly logDir: string;
  /** Where the `stdout` destination writes. @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** The server's own log, told when a run's logs are refused or fail. @default nothing */
  readonly log?: (line: string) => void;
  /** @default Date.now */
  readonly now?: () => number;
  /** A run's logs with no event for this long are closed. @default 600_000 */
  readonly idleMs?: number;
}

/** The run logs of a server: {@link RunLogs} and the files they hold. */
export interface ServerRunLogs extends RunLogs {
  /** How many log files are open (one per directory written to). */
  readonly files: number;
}

/**
 * Creates the run logs of `muster server`.
 *
 * @param source Reads a run's stored workflow (the orchestrator's store).
 * @param options The log directory, the stdout stream, the server's log.
 * @example
 * ```ts
 * const logs = createServerRunLogs(orchestrator.store, { logDir: '.muster/logs' });
 * orchestrator.subscribe((e) => void logs.log(e));
 * ```
 */
export function createServerRunLogs(
  source: RunLogsSource,
  options: ServerRunLogsOptions,
): ServerRunLogs {
  const logDir = resolve(options.logDir);
  const say = options.log ?? (() => {});
  const pool = createDailyFilePool();
  const logs = createRunLogs(source, {
    stdout: options.stdout ?? process.stdout,
    openFile: (file) => pool.open({ ...file, followSymlinks: false }),
    ...(options.now ? { now: options.now } : {}),
    ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
    resolveLogging(logging: Logging, runId: string): Logging {
      if (!logging.destinations.includes('file')) return logging;
      const confined = confineLogPath(logDir, logging.path);
      if ('dir' in confined) return { ...logging, path: confined.dir };
      say(
        `run ${runId}: no log file: logging.path ${JSON.stringify(logging.path)} ${confined.refused}`,
      );
      return { ...logging, destinations: logging.destinations.filter((d) => d !== 'file') };
    },
    onError: (runId, e) => say(`run ${runId}: its logs failed: ${e.message}`),
  });
  return {
    log: (event: RunEvent) => logs.log(event),
    get open() {
      return logs.open;
    },
    get files() {
      return pool.size;
    },
    close() {
      logs.close();
      pool.close();
    },
  };
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The path made relative: its last parts, without a root or `..`. */
function suggestion(path: string): string {
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.' && p !== '..');
  return parts.slice(-2).join('/') || 'logs/workflows';
}
