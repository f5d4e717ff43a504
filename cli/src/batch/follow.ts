/**
 * Following a run to its end from the WebSocket, with live progress on stderr (a bar per
 * operation on a terminal, a line per notable event otherwise): what `batch submit --watch` and
 * `batch status --follow` share.
 *
 * @module
 */
import type { Plan } from '../../../orchestrator/src/plan/types.ts';
import type { EventType, RunEvent } from '../../../orchestrator/src/engine/types.ts';
import type { ApiEvent, ApiRunSummary } from '../client-schemas.ts';
import type { MusterClient } from '../client.ts';
import { createProgressReporter } from '../progress.ts';
import { watchRun } from '../run-watch.ts';
import { EXIT_INTERRUPTED } from '../exit.ts';

/** Options of `followRun`. */
export interface FollowRunOptions {
  /** Where progress goes. @default process.stderr */
  readonly stream?: NodeJS.WriteStream;
  /** Show progress; without it only reconnects are reported. @default true */
  readonly progress?: boolean;
  /**
   * On Ctrl-C, say that the run goes on and exit with 130; without it, SIGINT is left alone.
   *
   * @default true
   */
  readonly handleSigint?: boolean;
}

/**
 * Follows a run until it reaches a final state, showing progress.
 *
 * @param client The API client (its server and token open the WebSocket).
 * @param runId The run.
 * @param options Where progress goes, and SIGINT handling.
 *
 * @returns The run's final status.
 */
export async function followRun(
  client: MusterClient,
  runId: string,
  options: FollowRunOptions = {},
): Promise<ApiRunSummary> {
  const stream = options.stream ?? process.stderr;
  const plan = await client.plan(runId);
  // The reporter reads the plan's operations and their task ids, which the JSON plan carries.
  const progress =
    options.progress === false
      ? undefined
      : createProgressReporter(plan as unknown as Plan, stream);
  const controller = new AbortController();
  const onSigint = () => {
    controller.abort();
    progress?.stop();
    stream.write(
      `\ninterrupted: run ${runId} keeps running on the orchestrator; ` +
        `follow it again with \`muster batch status ${runId} --follow\`\n`,
    );
    process.exit(EXIT_INTERRUPTED);
  };
  if (options.handleSigint !== false) process.once('SIGINT', onSigint);
  try {
    for await (const item of watchRun({
      server: client.server,
      token: client.token,
      runId,
      signal: controller.signal,
      onReconnect: (seq, reason) =>
        stream.write(`connection lost (${reason}); reconnecting from event ${seq}…\n`),
    })) {
      if (item.kind === 'event') progress?.onEvent(toRunEvent(item.event));
      else break;
    }
  } finally {
    process.off('SIGINT', onSigint);
    progress?.stop();
  }
  return client.status(runId);
}

/**
 * Turns an event from the API (snake_case, ISO time) into the engine's `RunEvent`.
 *
 * @param event The event as the API sends it.
 *
 * @returns The same event as the engine types it.
 */
export function toRunEvent(event: ApiEvent): RunEvent {
  return {
    id: event.id,
    runId: event.run_id,
    seq: event.seq,
    type: event.type as EventType,
    at: new Date(event.at),
    operationId: event.operation_id,
    taskId: event.task_id,
    data: event.data as RunEvent['data'],
  };
}
