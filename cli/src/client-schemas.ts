/**
 * The orchestrator API's responses as valibot schemas: the CLI checks every body at the boundary
 * (`v.safeParse`), so a server of another version fails with a clear message instead of printing
 * `undefined`. Objects are loose: fields the CLI does not know pass through to `-o json`.
 *
 * @see /work/prompts/api-contract.md (the REST/WS contract)
 * @module
 */
import * as v from 'valibot';
import { RUN_STATUSES } from '../../orchestrator/src/engine/types.ts';

/** Operation states, as the status route reports them. */
export const OPERATION_STATUSES = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'skipped',
  'rolled_back',
] as const;

const Timestamp = v.string();
const NullableTimestamp = v.nullable(v.string());

/** A `Problem` of `schemas/src/problems.ts`, as the server sends it. */
export const ProblemSchema = v.looseObject({
  code: v.string(),
  path: v.string(),
  message: v.string(),
  file: v.exactOptional(v.string()),
  line: v.exactOptional(v.number()),
  column: v.exactOptional(v.number()),
  expected: v.exactOptional(v.string()),
  received: v.exactOptional(v.string()),
  hint: v.exactOptional(v.string()),
});
export type ApiProblem = v.InferOutput<typeof ProblemSchema>;

/** An RFC 9457 problem document, with Muster's stable `code` and validation `problems`. */
export const ProblemDetailsSchema = v.looseObject({
  type: v.exactOptional(v.string()),
  title: v.exactOptional(v.string()),
  status: v.exactOptional(v.number()),
  detail: v.exactOptional(v.string()),
  code: v.exactOptional(v.string()),
  problems: v.exactOptional(v.array(ProblemSchema)),
});
export type ProblemDetails = v.InferOutput<typeof ProblemDetailsSchema>;

/** An event of a run's log: `{ id, run_id, seq, type, at, operation_id, task_id, data }`. */
export const ApiEventSchema = v.looseObject({
  id: v.number(),
  run_id: v.string(),
  seq: v.number(),
  type: v.string(),
  at: Timestamp,
  operation_id: v.nullable(v.string()),
  task_id: v.nullable(v.string()),
  data: v.record(v.string(), v.unknown()),
});
export type ApiEvent = v.InferOutput<typeof ApiEventSchema>;

/** A run in a list. */
export const RunListItemSchema = v.looseObject({
  id: v.string(),
  name: v.string(),
  status: v.picklist(RUN_STATUSES),
  labels: v.record(v.string(), v.string()),
  created_at: Timestamp,
  started_at: NullableTimestamp,
  finished_at: NullableTimestamp,
  error: v.nullable(v.string()),
});
export type RunListItem = v.InferOutput<typeof RunListItemSchema>;

/** A page of `GET /workflows`, newest first. */
export const RunPageSchema = v.looseObject({
  items: v.array(RunListItemSchema),
  next_cursor: v.nullish(v.string(), null),
});
export type RunPage = v.InferOutput<typeof RunPageSchema>;

/** Task counts by state, and their total. */
export const TaskCountsSchema = v.looseObject({
  total: v.number(),
  pending: v.number(),
  running: v.number(),
  succeeded: v.number(),
  failed: v.number(),
  skipped: v.number(),
  cancelled: v.number(),
  rolled_back: v.number(),
});

/** One operation's line of a status. */
export const OperationSummarySchema = v.looseObject({
  id: v.string(),
  level: v.number(),
  status: v.picklist(OPERATION_STATUSES),
  tasks: TaskCountsSchema,
  started_at: NullableTimestamp,
  finished_at: NullableTimestamp,
  duration_ms: v.nullable(v.number()),
});

/** `GET /workflows/{id}/status`: the `RunSummary` of `orchestrator/src/status.ts`. */
export const RunSummarySchema = v.looseObject({
  id: v.string(),
  name: v.string(),
  status: v.picklist(RUN_STATUSES),
  error: v.nullable(v.string()),
  created_at: Timestamp,
  started_at: NullableTimestamp,
  finished_at: NullableTimestamp,
  duration_ms: v.nullable(v.number()),
  checkpoint: v.number(),
  tasks: TaskCountsSchema,
  operations: v.array(OperationSummarySchema),
});
export type ApiRunSummary = v.InferOutput<typeof RunSummarySchema>;

/** `POST /workflows/batch`: the run created, or the one an idempotency key already named. */
export const SubmitResultSchema = v.looseObject({
  id: v.string(),
  name: v.string(),
  status: v.picklist(RUN_STATUSES),
  created: v.boolean(),
});
export type SubmitResult = v.InferOutput<typeof SubmitResultSchema>;

/** `POST /workflows/batch?validate=1` when the workflow is valid. */
export const ValidateResultSchema = v.looseObject({
  valid: v.boolean(),
  problems: v.array(ProblemSchema),
});
export type ValidateResult = v.InferOutput<typeof ValidateResultSchema>;

/** The JSON plan (`renderJsonChunks` of `orchestrator/src/plan`): the fields the CLI reads. */
export const ApiPlanSchema = v.looseObject({
  workflow: v.string(),
  type: v.string(),
  operations: v.array(
    v.looseObject({
      id: v.string(),
      level: v.number(),
      type: v.string(),
      target: v.string(),
      depends_on: v.array(v.string()),
      tasks: v.array(v.string()),
    }),
  ),
  tasks: v.array(v.looseObject({ id: v.string(), queue: v.string() })),
  edges: v.array(v.looseObject({ from: v.string(), to: v.string(), type: v.string() })),
  // Operation to operation: every task of `to` waits for every task of `from`.
  barriers: v.optional(
    v.array(v.looseObject({ from: v.string(), to: v.string(), type: v.string() })),
    [],
  ),
});
export type ApiPlan = v.InferOutput<typeof ApiPlanSchema>;

/** `POST /workflows/batch?dry_run=1`. */
export const DryRunResultSchema = v.looseObject({ plan: ApiPlanSchema });

/** `POST /workflows/{id}/pause` and the other controls: the run and its new state. */
export const ControlResultSchema = v.looseObject({
  id: v.string(),
  status: v.picklist(RUN_STATUSES),
});
export type ControlResult = v.InferOutput<typeof ControlResultSchema>;

/** A page of `GET /workflows/{id}/logs`. */
export const LogPageSchema = v.looseObject({
  items: v.array(ApiEventSchema),
  next_after: v.nullish(v.number(), null),
});
export type LogPage = v.InferOutput<typeof LogPageSchema>;
