/**
 * Logs for a process that drives many runs (`muster server`): each run's events go to the logs
 * its own workflow's `logging` block describes, opened when its first event arrives and closed
 * when it ends, pauses, or has been quiet for a while (the next event opens them again, and they
 * append to the same files).
 *
 * @module
 */
import * as v from 'valibot';
import { LoggingSchema, type Logging } from '../../../schemas/src/workflow.ts';
import type { RunEvent } from '../engine/types.ts';
import { FINAL_RUN_STATUSES, type RunStatus } from '../engine/types.ts';
import { coerceError } from '../errors.ts';
import { createRunEventLog, type RunEventLog } from './events.ts';
import type { CreateLoggerOptions } from './logger.ts';

/** Where {@link createRunLogs} finds a run's workflow. */
export interface RunLogsSource {
  getRun(id: string): Promise<{ readonly name: string; readonly workflow: unknown } | undefined>;
}

/** Options of {@link createRunLogs}: those shared by every run's logs, and the hooks. */
export interface RunLogsOptions extends Omit<CreateLoggerOptions, 'bindings'> {
  /**
   * The `logging` block a run's logs follow, from the one its workflow holds (`muster server`
   * confines the `path`, or drops the `file` destination when it may not be written).
   *
   * @default the block as written
   */
  readonly resolveLogging?: (logging: Logging, runId: string) => Logging;
  /**
   * Told when a run's logs cannot be opened or written: once per opening, as its events are
   * dropped until they are opened again.
   *
   * @default ignored
   */
  readonly onError?: (runId: string, error: Error) => void;
  /** A run's logs with no event for this long are closed. @default 600_000 (10 minutes) */
  readonly idleMs?: number;
}

/** Routes events of any run to that run's logs. */
export interface RunLogs {
  /** Logs an event (in the order events are given, per run); never rejects. */
  log(event: RunEvent): Promise<void>;
  /** How many runs have their logs open. */
  readonly open: number;
  /** Closes every open log; later events are ignored. */
  close(): void;
}

/** The logs of one run, from the opening that reads its workflow to their closing. */
interface Opened {
  log: Promise<RunEventLog | undefined>;
  closed: boolean;
  failed: boolean;
  lastUsed: number;
}

/** Whether a run's logs close after this event: it ended, or it waits for someone. */
function letsGo(event: RunEvent): boolean {
  if (!event.type.startsWith('run:')) return false;
  const status = event.type.slice(4);
  return status === 'paused' || FINAL_RUN_STATUSES.has(status as RunStatus);
}

/**
 * Creates the event logs of a multi-run process.
 *
 * @param source Reads a run's stored workflow (the orchestrator's store).
 * @param options The stdout stream and working directory shared by every run's logs, and hooks.
 * @example
 * ```ts
 * const logs = createRunLogs(orchestrator.store);
 * orchestrator.subscribe((e) => void logs.log(e));
 * ```
 */
export function createRunLogs(source: RunLogsSource, options: RunLogsOptions = {}): RunLogs {
  const { resolveLogging, onError, idleMs = 600_000, ...loggerOptions } = options;
  const opened = new Map<string, Opened>();
  let shut = false;

  const report = (runId: string, entry: Opened, e: unknown) => {
    if (entry.failed) return;
    entry.failed = true;
    onError?.(runId, coerceError(e));
  };

  const openLog = (runId: string): Opened => {
    const existing = opened.get(runId);
    if (existing) return existing;
    const entry: Opened = {
      log: Promise.resolve(undefined),
      closed: false,
      failed: false,
      lastUsed: Date.now(),
    };
    entry.log = source
      .getRun(runId)
      .then((run) => {
        if (!run) return undefined;
        const parsed = v.safeParse(
          LoggingSchema,
          (run.workflow as { logging?: unknown } | null)?.logging ?? {},
        );
        const logging = parsed.success ? parsed.output : v.parse(LoggingSchema, {});
        return createRunEventLog(runId, resolveLogging?.(logging, runId) ?? logging, {
          ...loggerOptions,
          workflow: run.name,
        });
      })
      // A failure to open (the store, a directory that cannot be made) is told once; the run's
      // events are dropped until its logs are opened again.
      .catch((e: unknown) => {
        report(runId, entry, e);
        return undefined;
      });
    opened.set(runId, entry);
    return entry;
  };

  const closeLog = (runId: string, entry: Opened) => {
    if (entry.closed) return;
    entry.closed = true;
    if (opened.get(runId) === entry) opened.delete(runId);
    void entry.log.then((log) => log?.close());
  };

  // Runs that stopped sending events without ending (their driver lost its store, or another
  // process took them over) must not hold their logs for the life of the process.
  const sweeper = setInterval(
    () => {
      const cutoff = Date.now() - idleMs;
      for (const [runId, entry] of opened) if (entry.lastUsed < cutoff) closeLog(runId, entry);
    },
    Math.max(1000, Math.min(idleMs, 60_000)),
  );
  sweeper.unref();

  return {
    async log(event) {
      if (shut) return;
      let entry = openLog(event.runId);
      entry.lastUsed = Date.now();
      let log = await entry.log;
      // Closed by an earlier event of the run (it ended, then was retried) or by the sweeper
      // while this one waited: open them again, after the events given before this one.
      while (entry.closed) {
        if (shut) return;
        entry = openLog(event.runId);
        log = await entry.log;
      }
      entry.lastUsed = Date.now();
      try {
        log?.log(event);
      } catch (e: unknown) {
        report(event.runId, entry, e);
      }
      if (letsGo(event)) closeLog(event.runId, entry);
    },
    get open() {
      return opened.size;
    },
    close() {
      shut = true;
      clearInterval(sweeper);
      for (const [runId, entry] of opened) closeLog(runId, entry);
    },
  };
}
