/**
 * The in-process executor: consumes every queue of this machine — `server:NAME` for local
 * servers (their sandbox is the working directory), `provider:NAME` and `orchestrator` — through
 * the same {@link Dispatcher} interface that remote agents serve.
 *
 * @module
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Provider } from '../../../providers/types.ts';
import type { DispatchHooks, Dispatcher, TaskAssignment, TaskReport } from '../engine/dispatch.ts';
import type { StepRegistry } from '../steps/types.ts';
import type { SecretsLoader } from '../secrets/index.ts';
import { runAssignment } from './task-runner.ts';

/** Options of the local executor. */
export interface LocalExecutorOptions {
  readonly registry: StepRegistry;
  readonly providers: ReadonlyMap<string, Provider>;
  /** Where `orchestrator` tasks run, and where non-local servers' steps would run. */
  readonly workRoot: string;
  /** Reads workflows' secrets at dispatch time. */
  readonly secrets?: SecretsLoader;
}

/** Creates the in-process executor. */
export function createLocalExecutor(options: LocalExecutorOptions): Dispatcher {
  const root = resolve(options.workRoot);
  const env = {
    registry: options.registry,
    providers: options.providers,
    ...(options.secrets ? { secrets: options.secrets } : {}),
    async workdir(a: TaskAssignment): Promise<string> {
      const provider = a.server ? options.providers.get(a.server.provider) : undefined;
      const dir =
        a.task.queue.startsWith('server:') && a.server && provider?.workdir
          ? provider.workdir(a.server)
          : a.task.queue.startsWith('server:')
            ? join(root, 'servers', a.task.queue.slice('server:'.length))
            : join(root, 'cluster');
      await mkdir(dir, { recursive: true });
      return dir;
    },
  };
  return {
    dispatch: (assignment: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport> =>
      runAssignment(assignment, hooks, env),
  };
}
