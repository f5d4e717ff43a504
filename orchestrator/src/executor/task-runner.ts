/**
 * Runs one assignment: a task's provider action, its steps in order, its health check; or, to
 * compensate it, the rollbacks of the steps it finished in reverse, its compensation steps, and
 * the deletion of a server it created. The in-process executor and remote agents both run tasks
 * through this function.
 *
 * Step params are rendered here, at dispatch, just before each step runs (see `templates/`): with
 * the run's inputs, the server's facts, earlier steps' and operations' outputs and the secrets
 * read for the run. Rendered params go to the handler and nowhere else. Everything the task
 * reports — output lines, step records (outputs, rollback data) and failures — passes through
 * the run's secrets redactor first, so no secret value reaches the engine, its store or its logs.
 *
 * @module
 */
import type { HealthCheck, Step } from '../../../schemas/src/workflow.ts';
import type { Provider } from '../../../providers/types.ts';
import type { DispatchHooks, TaskAssignment, TaskReport } from '../engine/dispatch.ts';
import type { StepRecord, TaskFailure } from '../engine/types.ts';
import { runStep, rollbackStep } from '../steps/registry.ts';
import { StepFailure, type StepContext, type StepRegistry } from '../steps/types.ts';
import type { LoadedSecrets, SecretsLoader } from '../secrets/index.ts';
import { createRedactor, NO_REDACTION, secretLeaves, type Redactor } from '../secrets/redact.ts';
import { SecretsError, type SecretTree } from '../secrets/types.ts';
import type { Outputs, TemplateContext } from '../templates/context.ts';
import { renderStep, TemplateError } from '../templates/render.ts';

/** What running a task needs from its surroundings. */
export interface TaskRunnerEnv {
  readonly registry: StepRegistry;
  readonly providers: ReadonlyMap<string, Provider>;
  /** Reads the run's secrets; without it, a workflow with a `secrets` block cannot run. */
  readonly secrets?: SecretsLoader;
  /** The working directory for the assignment's steps (created by the caller). */
  workdir(assignment: TaskAssignment): Promise<string>;
}

/** The record of a provider action, kept before the step records. */
const PROVIDER_RECORD = -1;

/** Runs an assignment and reports what came of it; never throws for a task's own failure. */
export async function runAssignment(
  assignment: TaskAssignment,
  hooks: DispatchHooks,
  env: TaskRunnerEnv,
): Promise<TaskReport> {
  let secrets: LoadedSecrets | undefined;
  try {
    secrets = await loadSecretsFor(assignment, env);
  } catch (e: unknown) {
    const failure = toFailure(e);
    hooks.output('stderr', failure.message);
    return { status: 'failed', result: { steps: [] }, failure };
  }
  const redact = secrets?.redactor ?? NO_REDACTION;
  const report =
    assignment.mode === 'execute'
      ? await execute(assignment, redacting(hooks, redact), env, secrets)
      : await compensate(assignment, redacting(hooks, redact), env, secrets);
  return redact.size === 0 ? report : redact.value(report);
}

async function loadSecretsFor(
  a: TaskAssignment,
  env: TaskRunnerEnv,
): Promise<LoadedSecrets | undefined> {
  if (a.secrets) return attached(a.secrets);
  const config = a.context?.secrets;
  if (!config) return undefined;
  if (!env.secrets) {
    throw new StepFailure(
      'secrets',
      'the workflow has secrets, but they were not sent with the task and this executor cannot read them',
      { nonRetryable: true },
    );
  }
  return env.secrets.load(config);
}

const redactors = new WeakMap<SecretTree, LoadedSecrets>();

/** Secrets the orchestrator sent with the assignment, with their redactor (built once). */
function attached(tree: SecretTree): LoadedSecrets {
  let loaded = redactors.get(tree);
  if (!loaded)
    redactors.set(tree, (loaded = { tree, redactor: createRedactor(secretLeaves(tree)) }));
  return loaded;
}

/** Hooks whose output lines and step records are redacted. */
function redacting(hooks: DispatchHooks, redact: Redactor): DispatchHooks {
  if (redact.size === 0) return hooks;
  return {
    signal: hooks.signal,
    output: (stream, line, step) => hooks.output(stream, redact.text(line), step),
    step: (record) => hooks.step(redact.value(record)),
  };
}

/** The variables a task's step params are rendered with. */
function templateContext(
  a: TaskAssignment,
  steps: Readonly<Record<string, Outputs>>,
  secrets: LoadedSecrets | undefined,
): TemplateContext {
  return {
    inputs: a.context?.inputs ?? {},
    env: a.context?.environment ?? '',
    run: { id: a.runId },
    task: { id: a.task.id, operation: a.task.operation, item: a.task.item, attempt: a.attempt },
    ...(a.server
      ? {
          server: {
            name: a.server.name,
            labels: a.server.labels,
            ...(a.server.address !== undefined ? { address: a.server.address } : {}),
          },
        }
      : {}),
    steps,
    operations: a.context?.operations ?? {},
    secrets: secrets?.tree ?? {},
  };
}

async function execute(
  a: TaskAssignment,
  hooks: DispatchHooks,
  env: TaskRunnerEnv,
  secrets: LoadedSecrets | undefined,
): Promise<TaskReport> {
  const redact = secrets?.redactor ?? NO_REDACTION;
  const records: StepRecord[] = [];
  const outputs: Record<string, Outputs> = {};
  const record = (r: StepRecord) => {
    const kept = redact.value(r);
    records.push(kept);
    if (kept.status === 'succeeded' && kept.index >= 0)
      outputs[kept.name] = { outputs: kept.outputs ?? {} };
    hooks.step(kept);
  };
  const fail = (failure: TaskFailure): TaskReport => ({
    status: 'failed',
    result: { steps: records },
    failure,
  });
  try {
    if (a.task.action) {
      const provider = providerFor(a, env);
      const server = serverOf(a);
      if (a.task.action === 'create') {
        const created = await provider.create(server, hooks.signal);
        record({
          index: PROVIDER_RECORD,
          name: 'provider:create',
          status: 'succeeded',
          rollbackData: created,
        });
        hooks.output(
          'info',
          `server ${server.name} ${created.created ? 'created' : 'already existed'}`,
        );
      } else if (a.task.action === 'delete') {
        await provider.delete(server, hooks.signal);
        record({ index: PROVIDER_RECORD, name: 'provider:delete', status: 'succeeded' });
        hooks.output('info', `server ${server.name} deleted`);
      } else {
        const status = await provider.status(server, hooks.signal);
        record({
          index: PROVIDER_RECORD,
          name: 'provider:status',
          status: 'succeeded',
          outputs: { state: status.state },
        });
        hooks.output('info', `server ${server.name} is ${status.state}`);
        if (status.state !== 'running') {
          return fail({
            type: 'server-not-running',
            message: `server ${server.name} is ${status.state}`,
          });
        }
      }
    }
    const ctx = await contextFor(a, hooks, env);
    for (const [index, step] of a.task.steps.entries()) {
      try {
        const rendered = renderStep(step, templateContext(a, outputs, secrets));
        const result = await runStep(env.registry, rendered, ctx);
        record({
          index,
          name: step.name,
          status: 'succeeded',
          ...(result.outputs ? { outputs: result.outputs } : {}),
          ...(result.rollbackData !== undefined ? { rollbackData: result.rollbackData } : {}),
        });
      } catch (e: unknown) {
        const failure = toFailure(e, step.name);
        if (!step.required || step.continue_on_failure) {
          hooks.output(
            'stderr',
            `${failure.message} (ignored: the step is not required)`,
            step.name,
          );
          record({ index, name: step.name, status: 'ignored' });
          continue;
        }
        record({ index, name: step.name, status: 'failed' });
        return fail(failure);
      }
    }
    if (a.task.health_check) {
      const failure = await healthCheck(a.task.health_check, ctx, env, hooks);
      if (failure) return fail(failure);
    }
    return { status: 'succeeded', result: { steps: records } };
  } catch (e: unknown) {
    return fail(toFailure(e));
  }
}

async function compensate(
  a: TaskAssignment,
  hooks: DispatchHooks,
  env: TaskRunnerEnv,
  secrets: LoadedSecrets | undefined,
): Promise<TaskReport> {
  const previous = a.previous?.steps ?? [];
  const outputs: Record<string, Outputs> = {};
  for (const r of previous) {
    if (r.index >= 0 && r.status === 'succeeded') outputs[r.name] = { outputs: r.outputs ?? {} };
  }
  const render = (step: Step) => renderStep(step, templateContext(a, outputs, secrets));
  const providerRecord = previous.find(
    (r) => r.index === PROVIDER_RECORD && r.name === 'provider:create',
  );
  const serverGone =
    a.task.action === 'create' &&
    !(providerRecord?.rollbackData as { created?: boolean } | undefined)?.created;
  try {
    const ctx = await contextFor(a, hooks, env);
    // Undo finished steps, last first.
    for (const r of [...previous].reverse()) {
      if (r.index < 0 || r.status !== 'succeeded') continue;
      const step = a.task.steps[r.index];
      if (!step) continue;
      await rollbackStep(
        env.registry,
        render(step),
        { ...(r.outputs ? { outputs: r.outputs } : {}), rollbackData: r.rollbackData },
        ctx,
      );
      hooks.output('info', `rolled back step ${step.name}`, step.name);
    }
    for (const step of a.task.compensation) {
      await runStep(env.registry, render(step), ctx);
      hooks.output('info', `ran compensation step ${step.name}`, step.name);
    }
    if (a.task.action === 'create' && providerRecord && !serverGone) {
      await providerFor(a, env).delete(serverOf(a), hooks.signal);
      hooks.output('info', `server ${a.task.server ?? a.task.item} deleted`);
    }
    return { status: 'succeeded', result: { steps: [] } };
  } catch (e: unknown) {
    return { status: 'failed', result: { steps: [] }, failure: toFailure(e) };
  }
}

async function healthCheck(
  check: HealthCheck,
  ctx: StepContext,
  env: TaskRunnerEnv,
  hooks: DispatchHooks,
): Promise<TaskFailure | undefined> {
  const step: Step = {
    name: 'health_check',
    type: 'script',
    params: { command: check.command, args: check.args, shell: check.shell },
    required: true,
    continue_on_failure: false,
    timeout: check.timeout,
  };
  let last: TaskFailure | undefined;
  for (let attempt = 0; attempt <= check.retries; attempt++) {
    if (attempt > 0) await sleep(check.interval * 1000, ctx.signal);
    try {
      await runStep(env.registry, step, ctx);
      hooks.output('info', 'health check passed', 'health_check');
      return undefined;
    } catch (e: unknown) {
      last = toFailure(e, 'health_check');
      if (ctx.signal.aborted) break;
      hooks.output(
        'stderr',
        `health check failed (${attempt + 1}/${check.retries + 1}): ${last.message}`,
        'health_check',
      );
    }
  }
  return {
    ...(last ?? { message: 'health check failed' }),
    type: 'health-check',
    step: 'health_check',
  };
}

async function contextFor(
  a: TaskAssignment,
  hooks: DispatchHooks,
  env: TaskRunnerEnv,
): Promise<StepContext> {
  const workdir = await env.workdir(a);
  return {
    runId: a.runId,
    taskId: a.task.id,
    attempt: a.attempt,
    ...(a.server
      ? {
          server: {
            name: a.server.name,
            labels: a.server.labels,
            ...(a.server.address !== undefined ? { address: a.server.address } : {}),
          },
        }
      : {}),
    workdir,
    signal: hooks.signal,
    env: {
      MUSTER_RUN_ID: a.runId,
      MUSTER_TASK_ID: a.task.id,
      MUSTER_ATTEMPT: String(a.attempt),
      MUSTER_OPERATION: a.task.operation,
      MUSTER_ITEM: a.task.item,
      ...(a.task.server !== undefined ? { MUSTER_SERVER: a.task.server } : {}),
    },
    log: (stream, line) => hooks.output(stream, line),
  };
}

function providerFor(a: TaskAssignment, env: TaskRunnerEnv): Provider {
  const name = a.task.provider ?? a.server?.provider ?? 'local';
  const provider = env.providers.get(name);
  if (!provider) {
    throw new StepFailure(
      'unknown-provider',
      `no provider "${name}" is available here (have: ${[...env.providers.keys()].join(', ')})`,
      { nonRetryable: true },
    );
  }
  return provider;
}

function serverOf(a: TaskAssignment) {
  const name = a.task.server ?? a.task.item;
  return {
    name,
    labels: a.server?.labels ?? {},
    ...(a.server?.address !== undefined ? { address: a.server.address } : {}),
    ...(a.server?.ssh !== undefined ? { ssh: a.server.ssh } : {}),
  };
}

function toFailure(e: unknown, step?: string): TaskFailure {
  if (e instanceof TemplateError) {
    return {
      type: 'template',
      message: `${step !== undefined ? `step "${step}": ` : ''}template ${e.message.replace(/^\[ORC1921\] /, '')}`,
      nonRetryable: true,
      ...(step !== undefined ? { step } : {}),
    };
  }
  if (e instanceof SecretsError) {
    return { type: 'secrets', message: e.message, nonRetryable: true };
  }
  if (e instanceof StepFailure) {
    return {
      type: e.type,
      message: e.message,
      nonRetryable: e.nonRetryable,
      ...(step !== undefined ? { step } : {}),
      ...(e.details ? { details: e.details } : {}),
    };
  }
  return {
    type: 'error',
    message: e instanceof Error ? e.message : String(e),
    ...(step !== undefined ? { step } : {}),
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
