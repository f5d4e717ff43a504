/**
 * Running one step: resolve its handler, validate its params, execute it under its timeout, and
 * turn whatever goes wrong into a {@link StepFailure}; and the same for its rollback.
 *
 * @module
 */
import * as v from 'valibot';
import { didYouMean, formatProblem, type Problem } from '../../../schemas/src/problems.ts';
import type { Step, StepAction } from '../../../schemas/src/workflow.ts';
import { coerceError } from '../errors.ts';
import { BUILTIN_STEP_HANDLERS } from './builtins.ts';
import { issuesToProblems } from './issues.ts';
import {
  abortFailure,
  StepFailure,
  type StepContext,
  type StepHandler,
  type StepRegistry,
  type StepResult,
} from './types.ts';

/** Per-call settings of {@link runStep} and {@link rollbackStep}. */
export interface RunStepConfig {
  /**
   * Milliseconds a handler gets, once its signal is aborted, to stop and clean up; after that the
   * step fails anyway and the handler is abandoned. It exceeds the `script` step's SIGTERM grace.
   *
   * @default 5000
   */
  readonly abortGraceMs?: number;
}

/** Per-call settings of {@link checkStepParams}. */
export interface CheckStepParamsConfig {
  /** The step's own path, prefixed to the problems' paths, e.g. `operations[0].steps[2]`. */
  readonly path?: string;
}

const DEFAULT_ABORT_GRACE_MS = 5000;
const OutputsSchema = v.optional(v.record(v.string(), v.string()));

/**
 * Runs a step with its registered handler.
 *
 * Params are validated first (`invalid-params`), `step.timeout` aborts the handler's signal
 * (`timeout`), an abort of `ctx.signal` fails with its reason (`cancelled` unless the reason is a
 * StepFailure), and any other error becomes type `error`. Failure messages start with the step.
 *
 * @returns The handler's outputs and rollback data (`{}` when it returned nothing).
 * @throws {StepFailure} When the step fails, for whatever reason.
 */
export async function runStep(
  registry: StepRegistry,
  step: Step,
  ctx: StepContext,
  config: RunStepConfig = {},
): Promise<StepResult> {
  const label = `step "${step.name}"`;
  const handler = resolveHandler(registry, step, label);
  const params = parseParams(handler, step.params, label);
  return invoke(label, step.timeout, ctx, config, async (inner) =>
    checkResult(await handler.execute(params, inner), handler, label),
  );
}

/**
 * Undoes a step: runs `step.rollback` when the step declares one; otherwise calls its handler's
 * own `rollback` with the saved `rollbackData` when the handler has one and the step succeeded
 * (`result` given); otherwise does nothing. `step.timeout` bounds the rollback too.
 *
 * @throws {StepFailure} When the rollback fails.
 */
export async function rollbackStep(
  registry: StepRegistry,
  step: Step,
  result: StepResult | undefined,
  ctx: StepContext,
  config: RunStepConfig = {},
): Promise<void> {
  const label = `rollback of step "${step.name}"`;
  if (step.rollback) {
    const action = actionStep(step, step.rollback);
    const handler = resolveHandler(registry, action, label, 'rollback.');
    const params = parseParams(handler, action.params, label, 'rollback.params');
    await invoke(label, step.timeout, ctx, config, async (inner) => {
      checkResult(await handler.execute(params, inner), handler, label);
    });
    return;
  }
  if (result === undefined) return;
  const handler = resolveHandler(registry, step, label);
  const rollback = handler.rollback;
  if (!rollback) return;
  const params = parseParams(handler, step.params, label);
  await invoke(label, step.timeout, ctx, config, (inner) =>
    rollback.call(handler, params, result.rollbackData, inner),
  );
}

/**
 * The problems with a step's handler and params (and its rollback action's), found without running
 * anything: for `muster validate` and planning. Paths are relative to the step unless
 * `config.path` gives the step's own.
 */
export function checkStepParams(
  registry: StepRegistry,
  step: Step,
  config: CheckStepParamsConfig = {},
): Problem[] {
  const at = (rel: string) => (config.path ? `${config.path}.${rel}` : rel);
  const check = (target: Pick<Step, 'type' | 'handler' | 'params'>, prefix: string): Problem[] => {
    const found = findHandler(registry, target);
    if ('problem' in found) return [{ ...found.problem, path: at(prefix + found.problem.path) }];
    const problems: Problem[] = [];
    if (target.type !== 'custom' && target.handler !== undefined) {
      problems.push({
        code: 'unused-handler',
        path: at(`${prefix}handler`),
        message: `"handler" is only read when type is "custom"; remove it, or set type: "custom"`,
      });
    }
    const parsed = v.safeParse(found.handler.params, target.params);
    if (!parsed.success) {
      problems.push(
        ...issuesToProblems(parsed.issues, {
          code: 'invalid-params',
          path: at(`${prefix}params`),
          schema: found.handler.params,
        }),
      );
    }
    return problems;
  };
  return [...check(step, ''), ...(step.rollback ? check(step.rollback, 'rollback.') : [])];
}

/** A rollback action as a step of its own. */
function actionStep(step: Step, action: StepAction): Step {
  return {
    name: step.name,
    type: action.type,
    params: action.params,
    required: true,
    continue_on_failure: false,
    ...(action.handler === undefined ? {} : { handler: action.handler }),
    ...(step.timeout === undefined ? {} : { timeout: step.timeout }),
  };
}

type FoundHandler = { handler: StepHandler<unknown> } | { problem: Problem };

function findHandler(registry: StepRegistry, step: Pick<Step, 'type' | 'handler'>): FoundHandler {
  if (step.type !== 'custom') {
    const handler = registry.get(step.type);
    if (handler) return { handler };
    return {
      problem: {
        code: 'unknown-handler',
        path: 'type',
        message: `no handler for step type "${step.type}" is registered`,
      },
    };
  }
  const custom = registry.types().filter((t) => !BUILTIN_TYPES.has(t));
  const known = custom.length > 0 ? `registered: ${custom.join(', ')}` : 'none are registered';
  if (step.handler === undefined || step.handler === '') {
    return {
      problem: {
        code: 'unknown-handler',
        path: 'handler',
        message: 'a step of type "custom" needs "handler": the name of a custom step handler',
        hint: `${known}; load yours with --handlers or MUSTER_HANDLERS`,
      },
    };
  }
  const handler = registry.get(step.handler);
  if (handler) return { handler };
  return {
    problem: {
      code: 'unknown-handler',
      path: 'handler',
      message: `no custom step handler named "${step.handler}" is registered (${known})`,
      hint:
        didYouMean(step.handler, registry.types()) ??
        'load the module that defines it with --handlers ./my-handlers.js or MUSTER_HANDLERS',
    },
  };
}

const BUILTIN_TYPES = new Set(BUILTIN_STEP_HANDLERS.map((h) => h.type));

function resolveHandler(
  registry: StepRegistry,
  step: Pick<Step, 'type' | 'handler'>,
  label: string,
  prefix = '',
): StepHandler<unknown> {
  const found = findHandler(registry, step);
  if ('handler' in found) return found.handler;
  const problem = { ...found.problem, path: prefix + found.problem.path };
  throw new StepFailure('unknown-handler', `${label}: ${formatProblem(problem)}`, {
    nonRetryable: true,
    details: { problems: [problem] },
  });
}

function parseParams(
  handler: StepHandler<unknown>,
  params: unknown,
  label: string,
  path = 'params',
): unknown {
  const parsed = v.safeParse(handler.params, params);
  if (parsed.success) return parsed.output;
  const problems = issuesToProblems(parsed.issues, {
    code: 'invalid-params',
    path,
    schema: handler.params,
  });
  throw new StepFailure(
    'invalid-params',
    `${label}: invalid params for "${handler.type}": ${problems.map(formatProblem).join('; ')}`,
    { nonRetryable: true, details: { problems } },
  );
}

function checkResult(
  result: StepResult | void,
  handler: StepHandler<unknown>,
  label: string,
): StepResult {
  if (result === undefined || result === null) return {};
  if (typeof result !== 'object' || !v.is(OutputsSchema, result.outputs)) {
    throw new StepFailure(
      'invalid-result',
      `${label}: handler "${handler.type}" returned ${typeof result === 'object' ? 'outputs that are not all strings' : `a ${typeof result}`}; return { outputs?: Record<string, string>, rollbackData? }`,
      { nonRetryable: true },
    );
  }
  return result;
}

/**
 * Runs `work` with a signal that aborts on `ctx.signal` or after `timeout` seconds, and maps what
 * it throws to a StepFailure labelled with the step.
 */
async function invoke<T>(
  label: string,
  timeout: number | undefined,
  ctx: StepContext,
  config: RunStepConfig,
  work: (ctx: StepContext) => Promise<T>,
): Promise<T> {
  if (ctx.signal.aborted) throw labelled(abortFailure(ctx.signal), label);
  const controller = new AbortController();
  const onAbort = () => controller.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeout === undefined
      ? undefined
      : setTimeout(
          () =>
            controller.abort(
              new StepFailure('timeout', `did not finish within its timeout of ${timeout}s`, {
                details: { timeout },
              }),
            ),
          timeout * 1000,
        );
  let graceTimer: NodeJS.Timeout | undefined;
  // A handler that ignores its signal must not hold the step: after the grace period it is
  // abandoned, and the step fails with the abort's reason.
  const abandoned = new Promise<'abandoned'>((resolve) => {
    controller.signal.addEventListener(
      'abort',
      () =>
        (graceTimer = setTimeout(
          () => resolve('abandoned'),
          config.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS,
        )),
      { once: true },
    );
  });
  const inner: StepContext = {
    runId: ctx.runId,
    taskId: ctx.taskId,
    attempt: ctx.attempt,
    workdir: ctx.workdir,
    env: ctx.env,
    signal: controller.signal,
    log: (stream, line) => ctx.log(stream, line),
    ...(ctx.server === undefined ? {} : { server: ctx.server }),
  };
  try {
    const running = Promise.resolve().then(() => work(inner));
    running.catch(() => {});
    const outcome = await Promise.race([running.then((value) => ({ value })), abandoned]);
    if (outcome === 'abandoned') {
      ctx.log(
        'info',
        `${label}: the handler did not stop within ${config.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS} ms of being aborted; abandoning it`,
      );
      throw abortFailure(controller.signal);
    }
    if (controller.signal.aborted) throw abortFailure(controller.signal);
    return outcome.value;
  } catch (e: unknown) {
    // Whatever a handler throws once aborted (a killed process's exit code, fetch's AbortError) is
    // a consequence; the abort's reason is the cause.
    if (controller.signal.aborted) throw labelled(abortFailure(controller.signal), label, e);
    throw labelled(toStepFailure(e), label);
  } finally {
    clearTimeout(timer);
    clearTimeout(graceTimer);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

function toStepFailure(e: unknown): StepFailure {
  if (e instanceof StepFailure) return e;
  const error = coerceError(e);
  return new StepFailure('error', error.message, { details: { name: error.name }, cause: e });
}

/** The same failure, its message prefixed with the step unless it already is. */
function labelled(failure: StepFailure, label: string, cause?: unknown): StepFailure {
  if (failure.message.startsWith(`${label}: `) && cause === undefined) return failure;
  return new StepFailure(
    failure.type,
    failure.message.startsWith(`${label}: `) ? failure.message : `${label}: ${failure.message}`,
    {
      nonRetryable: failure.nonRetryable,
      ...(failure.details === undefined ? {} : { details: failure.details }),
      cause: cause ?? failure.cause ?? failure,
    },
  );
}
