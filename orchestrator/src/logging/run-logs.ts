/**
 * Logs for a process that drives many runs (`muster server`): each run's events go to the logs
 * its own workflow's `logging` block describes, opened when its first event arrives and closed
 * when it ends.
 *
 * @module
 */
import * as v from 'valibot';
import { LoggingSchema } from '../../../schemas/src/workflow.ts';
import type { RunEvent } from '../engine/types.ts';
import { FINAL_RUN_STATUSES, type RunStatus } from '../engine/types.ts';
import { createRunEventLog, type RunEventLog } from './events.ts';
import type { CreateLoggerOptions } from './logger.ts';

/** Where {@link createRunLogs} finds a run's workflow. */
export interface RunLogsSource {
  getRun(id: string): Promise<{ readonly name: string; readonly workflow: unknown } | undefined>;
}

/** Routes events of any run to that run's logs. */
export interface RunLogs {
  /** Logs an event (in the order events are given, per run). */
  log(event: RunEvent): Promise<void>;
  /** Closes every open log. */
  close(): void;
}

/**
 * Creates the event logs of a multi-run process.
 *
 * @param source Reads a run's stored workflow (the orchestrator's store).
 * @param options The stdout stream and working directory shared by every run's logs.
 * @example
 * ```ts
 * const logs = createRunLogs(orchestrator.store);
 * orchestrator.subscribe((e) => void logs.log(e));
 * ```
 */
export function createRunLogs(
  source: RunLogsSource,
  options: Omit<CreateLoggerOptions, 'bindings'> = {},
): RunLogs {
  const open = new Map<string, Promise<RunEventLog | undefined>>();
  const logOf = (runId: string) => {
    let log = open.get(runId);
    if (!log) {
      log = source.getRun(runId).then((run) => {
        if (!run) return undefined;
        const logging = v.safeParse(
          LoggingSchema,
          (run.workflow as { logging?: unknown } | null)?.logging ?? {},
        );
        return createRunEventLog(
          runId,
          logging.success ? logging.output : v.parse(LoggingSchema, {}),
          { ...options, workflow: run.name },
        );
      });
      open.set(runId, log);
    }
    return log;
  };
  return {
    async log(event) {
      const log = await logOf(event.runId);
      log?.log(event);
      const ended =
        event.type.startsWith('run:') && FINAL_RUN_STATUSES.has(event.type.slice(4) as RunStatus);
      if (ended) {
        log?.close();
        open.delete(event.runId);
      }
    },
    close() {
      for (const log of open.values()) void log.then((l) => l?.close());
      open.clear();
    },
  };
}
