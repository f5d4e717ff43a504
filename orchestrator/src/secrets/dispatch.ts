/**
 * Secrets at dispatch: a {@link Dispatcher} wrapper that reads a run's secrets on the
 * orchestrator (where the SOPS files and keys are) when a task is dispatched, hands their values
 * to the executor with the assignment — in memory, and over the agent channel to remote agents —
 * and redacts what comes back, so no value reaches the engine, whatever ran the task.
 *
 * @module
 */
import type { DispatchHooks, Dispatcher, TaskAssignment, TaskReport } from '../engine/dispatch.ts';
import type { SecretsLoader } from './index.ts';
import { NO_REDACTION, type Redactor } from './redact.ts';
import { SecretsError } from './types.ts';

/**
 * Wraps a dispatcher so that tasks of workflows with a `secrets` block get their values.
 *
 * @param inner The dispatcher that runs tasks (the local executor, or the agents' router).
 * @param loader Reads secrets (cached briefly, in memory only).
 * @returns A dispatcher; tasks without secrets pass through unchanged.
 */
export function withSecrets(inner: Dispatcher, loader: SecretsLoader): Dispatcher {
  return {
    async dispatch(assignment: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport> {
      const config = assignment.context?.secrets;
      if (!config || assignment.secrets) return inner.dispatch(assignment, hooks);
      let redactor: Redactor = NO_REDACTION;
      let withValues: TaskAssignment;
      try {
        const loaded = await loader.load(config);
        redactor = loaded.redactor;
        withValues = { ...assignment, secrets: loaded.tree };
      } catch (e: unknown) {
        const message =
          e instanceof SecretsError
            ? e.message
            : `cannot read the workflow's secrets: ${String(e)}`;
        hooks.output('stderr', message);
        return {
          status: 'failed',
          result: { steps: [] },
          failure: { type: 'secrets', message, nonRetryable: true },
        };
      }
      const report = await inner.dispatch(withValues, {
        signal: hooks.signal,
        output: (stream, line, step) => hooks.output(stream, redactor.text(line), step),
        step: (record) => hooks.step(redactor.value(record)),
      });
      return redactor.value(report);
    },
    // A re-attached attempt runs on an agent already, whose relay read and redacts its secrets.
    ...(inner.reattach
      ? { reattach: (assignment, hooks) => inner.reattach!(assignment, hooks) }
      : {}),
  };
}
