/**
 * Fleet-rollout requests in the reference format (`servers`, `steps`, `rolloutStrategy`, as the
 * Kitsune orchestrator takes them), validated and translated into a Muster workflow, so users of
 * that format move over without rewriting their requests.
 *
 * A request becomes one `update` operation, `execute`, on `target: "server"` over the listed
 * servers, with the steps in order and the rollout strategy:
 *
 * | request                                   | workflow                                     |
 * | ----------------------------------------- | -------------------------------------------- |
 * | `servers: ["web-1"]`                      | `servers: [{name: "web-1", provider: "local"}]`, or the inventory's entry |
 * | `steps[i].continueOnFailure`              | `steps[i].continue_on_failure`               |
 * | `steps[i].required` (default `true`)      | `steps[i].required`                          |
 * | `rolloutStrategy.type: "Rolling"`         | `rollout.strategy: "rolling"` (any case)     |
 * | `batchSize`, `batchDelaySeconds`          | `batch_size`, `batch_delay` (rolling, canary) |
 * | `maxFailures`                             | `max_failures`                               |
 * | `canaryPercentage`                        | `canary_percentage` (canary)                 |
 *
 * A failed required step rolls the execution back (`on_failure: "rollback"`), as the reference
 * does. `required` defaults to `true`: a step that fails is never skipped silently unless the
 * request says so. Muster extensions, all optional: `name`, `labels`, a server given as a full
 * Muster server object (e.g. an ssh host), and `rolloutStrategy.canaryPromotion`
 * (`manual`, the default, waits for `muster batch resume`; `auto` goes on when the canaries pass).
 *
 * @module
 */
import * as v from 'valibot';
import { didYouMean, type Problem } from '../../../schemas/src/problems.ts';
import {
  CANARY_PROMOTIONS,
  NAME_PATTERN,
  ServerSchema,
  type Server,
  type WorkflowInput,
} from '../../../schemas/src/workflow.ts';

/** The step types a request may use: the reference's four, and Muster's `http`. */
export const EXECUTION_STEP_TYPES = ['echo', 'script', 'sleep', 'file_write', 'http'] as const;

/** Rollout types, as the reference spells them; matched in any case. */
export const ROLLOUT_TYPES = ['Parallel', 'Sequential', 'Rolling', 'Canary'] as const;

/** The id of the one operation a request becomes. */
export const EXECUTION_OPERATION = 'execute';

const ServerName = v.pipe(
  v.string(),
  v.regex(
    NAME_PATTERN,
    'a server name: letters, digits, "_" or "-", starting with a letter or digit',
  ),
);

/** One step of a request. */
export const ExecutionStepSchema = v.strictObject({
  name: v.pipe(v.string(), v.minLength(1, 'a step name')),
  type: v.picklist(EXECUTION_STEP_TYPES, `one of ${EXECUTION_STEP_TYPES.join(', ')}`),
  params: v.optional(v.record(v.string(), v.unknown()), () => ({})),
  required: v.optional(v.boolean(), true),
  continueOnFailure: v.optional(v.boolean(), false),
});

const RolloutType = v.pipe(
  v.string(),
  v.check(
    (s) => ROLLOUT_TYPES.some((t) => t.toLowerCase() === s.toLowerCase()),
    `one of ${ROLLOUT_TYPES.join(', ')}`,
  ),
  v.transform((s) => s.toLowerCase() as 'parallel' | 'sequential' | 'rolling' | 'canary'),
);

/** The rollout strategy of a request. */
export const RolloutStrategySchema = v.strictObject({
  type: v.optional(RolloutType, 'Parallel'),
  batchSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1, 'a whole number ≥ 1'))),
  batchDelaySeconds: v.optional(v.pipe(v.number(), v.minValue(0, 'a number ≥ 0'))),
  maxFailures: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0, 'a whole number ≥ 0'))),
  canaryPercentage: v.optional(
    v.pipe(
      v.number(),
      v.minValue(1, 'a number from 1 to 100'),
      v.maxValue(100, 'a number from 1 to 100'),
    ),
  ),
  canaryPromotion: v.optional(v.picklist(CANARY_PROMOTIONS, 'manual or auto')),
});

/** A request: what `POST /executions` accepts. */
export const ExecutionRequestSchema = v.strictObject({
  servers: v.pipe(
    // A name as in the reference, or (a Muster extension) a whole server.
    v.array(v.union([ServerName, ServerSchema], 'a server name, or a Muster server object')),
    v.minLength(1, 'at least one server'),
  ),
  steps: v.pipe(v.array(ExecutionStepSchema), v.minLength(1, 'at least one step')),
  rolloutStrategy: v.optional(RolloutStrategySchema),
  name: v.optional(v.pipe(v.string(), v.minLength(1))),
  labels: v.optional(v.record(v.string(), v.string())),
});
/** A request as sent. */
export type ExecutionRequestInput = v.InferInput<typeof ExecutionRequestSchema>;
/** A request with defaults filled in. */
export type ExecutionRequest = v.InferOutput<typeof ExecutionRequestSchema>;

/** The fields each object of a request may have, for "did you mean" on an unknown one. */
const KNOWN_FIELDS: ReadonlyArray<[RegExp, readonly string[]]> = [
  [/^$/, Object.keys(ExecutionRequestSchema.entries)],
  [/^rolloutStrategy$/, Object.keys(RolloutStrategySchema.entries)],
  [/^steps\.\d+$/, Object.keys(ExecutionStepSchema.entries)],
  [/^servers\.\d+$/, Object.keys(ServerSchema.entries)],
];

/**
 * Validates a request.
 *
 * @returns The request with defaults, or every problem with its path (`steps.0.type`), what was
 * expected and what was found, and a hint where one helps.
 */
export function parseExecutionRequest(
  value: unknown,
): { success: true; output: ExecutionRequest } | { success: false; problems: Problem[] } {
  const parsed = v.safeParse(ExecutionRequestSchema, value);
  if (!parsed.success) {
    return { success: false, problems: parsed.issues.flatMap(serverIssues).map(toProblem) };
  }
  const problems = duplicateServers(parsed.output.servers);
  return problems.length > 0
    ? { success: false, problems }
    : { success: true, output: parsed.output };
}

/**
 * A server that is neither a good name nor a good server object fails the union as a whole; check
 * it again with the schema its type calls for, so the problems name the field at fault.
 */
function serverIssues(issue: v.BaseIssue<unknown>): v.BaseIssue<unknown>[] {
  const [first, second] = issue.path ?? [];
  if (issue.type !== 'union' || first?.key !== 'servers' || second === undefined) return [issue];
  const schema = typeof issue.input === 'string' ? ServerName : ServerSchema;
  const again = v.safeParse(schema, issue.input);
  if (again.success) return [issue];
  return again.issues.map((i) => ({ ...i, path: [first, second, ...(i.path ?? [])] }) as typeof i);
}

function toProblem(issue: v.BaseIssue<unknown>): Problem {
  const path = v.getDotPath(issue) ?? '';
  const where = path === '' ? 'the request' : path;
  if (issue.type === 'strict_object' && issue.expected === 'never') {
    const key = String(issue.path?.at(-1)?.key ?? '');
    const parent = path.split('.').slice(0, -1).join('.');
    const known = KNOWN_FIELDS.find(([re]) => re.test(parent))?.[1] ?? [];
    const hint = didYouMean(key, known);
    return {
      code: 'unknown-field',
      path,
      message: `${where}: unknown field`,
      expected: known.length > 0 ? `one of ${known.join(', ')}` : 'no such field',
      received: `"${key}"`,
      ...(hint ? { hint } : {}),
    };
  }
  const own = issue.message.startsWith('Invalid ');
  const expected = own ? (issue.expected ?? 'something else') : issue.message;
  return {
    code: 'invalid-request',
    path,
    message: `${where}: expected ${expected}`,
    expected,
    received: issue.received,
    ...(path.endsWith('type') && path.startsWith('rolloutStrategy')
      ? { hint: 'the reference spells them Parallel, Sequential, Rolling; Muster adds Canary' }
      : {}),
  };
}

function duplicateServers(servers: ExecutionRequest['servers']): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const [i, s] of servers.entries()) {
    const name = typeof s === 'string' ? s : s.name;
    if (seen.has(name)) {
      problems.push({
        code: 'duplicate-server',
        path: `servers.${i}`,
        message: `servers.${i}: "${name}" is listed twice; list each server once`,
        received: `"${name}"`,
      });
    }
    seen.add(name);
  }
  return problems;
}

/** Options of {@link translateExecution}. */
export interface TranslateOptions {
  /**
   * Known servers: a request's server with one of these names runs as the inventory says (an ssh
   * host, say); any other name is a local server.
   */
  readonly inventory?: readonly Server[];
}

/**
 * Translates a request into a Muster workflow (as written: Muster's defaults fill the rest).
 *
 * @example
 * ```ts
 * const workflow = translateExecution({
 *   servers: ['server-1', 'server-2'],
 *   steps: [{ name: 'hello', type: 'echo', params: { message: 'hi' }, required: true, continueOnFailure: false }],
 *   rolloutStrategy: { type: 'rolling', batchSize: 1 },
 * });
 * // workflow.operations[0].rollout → { strategy: 'rolling', batch_size: 1 }
 * ```
 */
export function translateExecution(
  request: ExecutionRequest,
  options: TranslateOptions = {},
): WorkflowInput {
  const inventory = new Map((options.inventory ?? []).map((s) => [s.name, s]));
  const servers = request.servers.map((s) =>
    typeof s === 'string' ? (inventory.get(s) ?? { name: s, provider: 'local' as const }) : s,
  );
  const strategy = request.rolloutStrategy;
  const type = strategy?.type ?? 'parallel';
  const batched = type === 'rolling' || type === 'canary';
  return {
    name: request.name ?? 'execution',
    description: `POST /executions: ${request.steps.length} step(s) on ${servers.length} server(s), ${type} rollout`,
    labels: { source: 'executions', ...request.labels },
    servers,
    operations: [
      {
        id: EXECUTION_OPERATION,
        type: 'update',
        target: 'server',
        items: servers.map((s) => s.name),
        parallel: type !== 'sequential',
        on_failure: 'rollback',
        rollout: {
          strategy: type,
          ...(batched && strategy?.batchSize !== undefined
            ? { batch_size: strategy.batchSize }
            : {}),
          ...(batched && strategy?.batchDelaySeconds !== undefined
            ? { batch_delay: strategy.batchDelaySeconds }
            : {}),
          ...(strategy?.maxFailures !== undefined ? { max_failures: strategy.maxFailures } : {}),
          ...(type === 'canary' && strategy?.canaryPercentage !== undefined
            ? { canary_percentage: strategy.canaryPercentage }
            : {}),
          ...(type === 'canary' && strategy?.canaryPromotion !== undefined
            ? { canary_promotion: strategy.canaryPromotion }
            : {}),
        },
        steps: request.steps.map((s) => ({
          name: s.name,
          type: s.type,
          params: s.params,
          required: s.required,
          continue_on_failure: s.continueOnFailure,
        })),
      },
    ],
  };
}

/**
 * Where a problem of the translated workflow is in the request: `operations[0].steps[1].params`
 * is `steps.1.params`, `servers[2]` is `servers.2`; other paths are the workflow's own.
 */
export function requestPath(workflowPath: string): string {
  const step = /^operations\[0\]\.steps\[(\d+)\](.*)$/.exec(workflowPath);
  if (step) return `steps.${step[1]}${step[2] ?? ''}`.replace(/\[(\d+)\]/g, '.$1');
  const server = /^servers\[(\d+)\](.*)$/.exec(workflowPath);
  if (server) return `servers.${server[1]}${server[2] ?? ''}`.replace(/\[(\d+)\]/g, '.$1');
  return workflowPath;
}
