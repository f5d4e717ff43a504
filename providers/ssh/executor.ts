/**
 * The executor path for ssh servers: assignments whose server has `provider: "ssh"` run through
 * the same task runner as local ones, with the ssh step registry (steps run on the host) and the
 * server's work directory on the host; every other assignment goes to the wrapped dispatcher.
 *
 * @module
 */
import type {
  DispatchHooks,
  Dispatcher,
  TaskAssignment,
  TaskReport,
} from '../../orchestrator/src/engine/dispatch.ts';
import { runAssignment, type TaskRunnerEnv } from '../../orchestrator/src/executor/task-runner.ts';
import type { StepRegistry } from '../../orchestrator/src/steps/types.ts';
import type { Provider, ProviderServer } from '../types.ts';
import type { SshConnection } from './connection.ts';
import { createSshStepRegistry, type RemoteScriptOptions } from './remote-steps.ts';
import { mkdirp } from './sftp.ts';
import type { SshProvider } from './types.ts';

/** Options of {@link routeSshServers}. */
export interface SshExecutorOptions {
  /** The ssh provider (unlimited: step traffic is not provider API calls). */
  readonly ssh: SshProvider;
  /** The providers provider actions go through (with the ssh one, limited). */
  readonly providers: ReadonlyMap<string, Provider>;
  /** The step registry local servers use; types ssh cannot run are refused by name. */
  readonly registry: StepRegistry;
  /** Settings of the remote `script` step. */
  readonly script?: RemoteScriptOptions;
}

/**
 * Wraps a dispatcher so that ssh servers' assignments run over SSH.
 *
 * @example
 * ```ts
 * const dispatcher = routeSshServers(createLocalExecutor({ registry, providers, workRoot }), {
 *   ssh, providers, registry,
 * });
 * ```
 */
export function routeSshServers(inner: Dispatcher, options: SshExecutorOptions): Dispatcher {
  return {
    dispatch(assignment: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport> {
      if (assignment.server?.provider !== 'ssh') return inner.dispatch(assignment, hooks);
      const server = providerServer(assignment);
      let connection: Promise<SshConnection> | undefined;
      const connect = () => (connection ??= options.ssh.connect(server, hooks.signal));
      const env: TaskRunnerEnv = {
        registry: createSshStepRegistry({
          ...options.script,
          server: server.name,
          connection: connect,
          base: options.registry,
        }),
        providers: options.providers,
        async workdir() {
          const dir = await options.ssh.remoteWorkdir(server, hooks.signal);
          // As for local servers, the work directory exists before the first step runs; but a
          // delete (or a status check, or undoing a create) must not bring it back.
          const action = assignment.task.action;
          if (assignment.mode === 'execute' && (action === undefined || action === 'create')) {
            await (await connect()).withSftp((sftp) => mkdirp(sftp, dir));
          }
          return dir;
        },
      };
      return runAssignment(assignment, hooks, env);
    },
    // An SSH step cut off with its driver cannot be found again: it counts as interrupted.
    ...(inner.reattach
      ? {
          reattach: async (assignment: TaskAssignment, hooks: DispatchHooks) =>
            assignment.server?.provider === 'ssh' ? undefined : inner.reattach!(assignment, hooks),
        }
      : {}),
  };
}

function providerServer(a: TaskAssignment): ProviderServer {
  const s = a.server;
  return {
    name: a.task.server ?? a.task.item,
    labels: s?.labels ?? {},
    ...(s?.address !== undefined ? { address: s.address } : {}),
    ...(s?.ssh !== undefined ? { ssh: s.ssh } : {}),
  };
}
