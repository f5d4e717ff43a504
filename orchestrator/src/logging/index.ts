/**
 * Structured logs of workflow runs (pino): JSON or text lines with run id, operation, task and a
 * trace id, to daily files pruned by retention and/or stdout, as a workflow's `logging` says.
 *
 * @module
 */
export { createDailyFileDestination } from './daily-file.ts';
export type { DailyFileDestination, DailyFileOptions } from './daily-file.ts';
export { createRunEventLog, traceIdFor } from './events.ts';
export type { RunEventLog } from './events.ts';
export { createLogger } from './logger.ts';
export type { CreateLoggerOptions, WorkflowLogger } from './logger.ts';
export { formatText } from './text-format.ts';
export { createRunLogs } from './run-logs.ts';
export type { RunLogs, RunLogsOptions, RunLogsSource } from './run-logs.ts';
export { createDailyFilePool } from './file-pool.ts';
export type { DailyFilePool } from './file-pool.ts';
export {
  checkServerLogging,
  confineLogPath,
  createServerRunLogs,
  LOG_PATH_PROBLEM,
  logPathProblem,
} from './server-logs.ts';
export type { ServerRunLogs, ServerRunLogsOptions } from './server-logs.ts';
