/**
 * Run events as log lines: what `muster run` (and the server, run by run) writes to a workflow's
 * logs. Each line carries the run id, the run's trace id, and the operation and task the event is
 * about; task output lines keep their stream and step.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { Level } from 'pino';
import type { Logging } from '../../../schemas/src/workflow.ts';
import type { RunEvent } from '../engine/types.ts';
import { createLogger, type CreateLoggerOptions } from './logger.ts';

/** Logs the events of one run. */
export interface RunEventLog {
  /** Writes the event, if the level lets it through. */
  log(event: RunEvent): void;
  /** The log file written to now, when `file` is a destination. */
  readonly file: string | undefined;
  close(): void;
}

/**
 * The trace id of a run: 32 hex digits (W3C trace-context size) derived from the run id, so
 * every process that drives or resumes the run logs the same one.
 */
export function traceIdFor(runId: string): string {
  return createHash('sha256').update(runId).digest('hex').slice(0, 32);
}

/**
 * Creates the event log of one run.
 *
 * @param runId The run.
 * @param logging The run's workflow's `logging` block.
 * @param options The stdout stream, the working directory, a redactor.
 * @example
 * ```ts
 * const log = createRunEventLog(run.id, workflow.logging);
 * orchestrator.subscribe((e) => e.runId === run.id && log.log(e));
 * ```
 */
export function createRunEventLog(
  runId: string,
  logging: Logging,
  options: Omit<CreateLoggerOptions, 'bindings'> & { readonly workflow?: string } = {},
): RunEventLog {
  const created = createLogger(logging, {
    ...options,
    bindings: {
      run_id: runId,
      trace_id: traceIdFor(runId),
      ...(options.workflow !== undefined ? { workflow: options.workflow } : {}),
    },
  });
  const { logger } = created;
  return {
    log(event) {
      const { level, msg, fields } = describe(event);
      logger[level](
        {
          event: event.type,
          seq: event.seq,
          ...(event.operationId !== null ? { operation: event.operationId } : {}),
          ...(event.taskId !== null ? { task: event.taskId } : {}),
          ...fields,
        },
        msg,
      );
    },
    get file() {
      return created.file;
    },
    close: () => created.close(),
  };
}

function describe(event: RunEvent): { level: Level; msg: string; fields: Record<string, unknown> } {
  const d = event.data as unknown as Record<string, unknown>;
  switch (event.type) {
    case 'task:output': {
      const { stream, line, step } = d as { stream: string; line: string; step?: string };
      return {
        level: stream === 'stderr' ? 'warn' : 'info',
        msg: line,
        fields: { stream, ...(step !== undefined ? { step } : {}) },
      };
    }
    case 'task:step': {
      const { name, status, attempt } = d as { name: string; status: string; attempt: number };
      return {
        level: 'debug',
        msg: `step ${name} ${status}`,
        fields: { step: name, status, attempt },
      };
    }
    case 'task:failed': {
      const { failure, final, attempt, retryInMs } = d as {
        failure: { type: string; message: string; step?: string };
        final: boolean;
        attempt: number;
        retryInMs?: number;
      };
      return {
        level: final ? 'error' : 'warn',
        msg: `task failed: ${failure.message}`,
        fields: {
          attempt,
          failure_type: failure.type,
          final,
          ...(failure.step !== undefined ? { step: failure.step } : {}),
          ...(retryInMs !== undefined ? { retry_in_ms: retryInMs } : {}),
        },
      };
    }
    case 'task:compensation_failed':
      return {
        level: 'error',
        msg: `compensation failed: ${(d['failure'] as { message: string }).message}`,
        fields: {},
      };
    case 'run:failed':
      return { level: 'error', msg: `run failed: ${String(d['error'])}`, fields: {} };
    case 'operation:failed':
      return { level: 'error', msg: 'operation failed', fields: { ...d } };
    default:
      return {
        level: 'info',
        msg: event.type.replace(':', ' ').replace('_', ' '),
        fields: { ...d },
      };
  }
}
