/**
 * The REST API's request and response shapes as valibot schemas: routes validate what comes in
 * with them (`v.safeParse` at the boundary), and `GET /openapi.json` is generated from them.
 * Everything on the wire is snake_case.
 *
 * @module
 */
import * as v from 'valibot';
import { StepSchema, HealthCheckSchema } from '../../../schemas/src/workflow.ts';
import { RUN_STATUSES } from '../engine/types.ts';

/** How many runs a page of `GET /workflows` holds at most. */
export const MAX_PAGE_SIZE = 500;

/** A query flag: `1`/`true` on, `0`/`false` off. */
export const FlagSchema = v.picklist(['1', 'true', '0', 'false'], 'one of 1, true, 0, false');

/** Whether a parsed {@link FlagSchema} value is on. */
export function isOn(flag: string | undefined): boolean {
  return flag === '1' || flag === 'true';
}

/** A run's status. */
export const RunStatusSchema = v.picklist(RUN_STATUSES, `one of ${RUN_STATUSES.join(', ')}`);

// ── errors ──────────────────────────────────────────────────────────────────

/** One located problem (schemas/src/problems.ts `Problem`). */
export const ProblemSchema = v.object({
  code: v.pipe(v.string(), v.description('A stable kind: schema, unknown-operation, cycle, …')),
  path: v.pipe(v.string(), v.description('Dotted path to the field, empty for the document')),
  message: v.string(),
  file: v.optional(v.string()),
  line: v.optional(v.number()),
  column: v.optional(v.number()),
  expected: v.optional(v.string()),
  received: v.optional(v.string()),
  hint: v.optional(v.string()),
});

/** An error answer: RFC 9457 problem details with Muster's stable code. */
export const ProblemDetailsSchema = v.object({
  type: v.pipe(v.string(), v.description('urn:muster:problem:CODE')),
  title: v.string(),
  status: v.number(),
  detail: v.string(),
  code: v.pipe(
    v.string(),
    v.description('Stable error code: MUS2001, ORC1001, ORC1002, API4001, API4010, …'),
  ),
  instance: v.optional(v.string()),
  problems: v.optional(v.array(ProblemSchema)),
});
export type ProblemDetails = v.InferOutput<typeof ProblemDetailsSchema>;

// ── submit ──────────────────────────────────────────────────────────────────

/** Labels: short keys and values. */
export const LabelsSchema = v.record(
  v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/, 'a label key')),
  v.pipe(v.string(), v.maxLength(256)),
);

/** An idempotency key: 1 to 255 visible characters. */
export const IdempotencyKeySchema = v.pipe(
  v.string(),
  v.regex(/^[\x21-\x7e]{1,255}$/, '1 to 255 visible ASCII characters'),
);

/** Input values by name, as `--set` gives them: text, parsed by each input's type. */
export const InputValuesSchema = v.record(
  v.pipe(v.string(), v.minLength(1)),
  v.union([v.string(), v.number(), v.boolean(), v.array(v.string())]),
);

/** `POST /workflows/batch` with `application/json` and a `source`: the workflow as text. */
export const SubmitEnvelopeSchema = v.strictObject({
  source: v.pipe(v.string(), v.description('The workflow file, as text')),
  format: v.picklist(['cue', 'json', 'yaml'], 'one of cue, json, yaml'),
  labels: v.optional(LabelsSchema),
  idempotency_key: v.optional(IdempotencyKeySchema),
  inputs: v.optional(
    v.pipe(
      InputValuesSchema,
      v.description('Input values, like `muster run --set`; a list is joined with commas'),
    ),
  ),
  environment: v.optional(
    v.pipe(v.string(), v.minLength(1), v.description("One of the workflow's environments")),
  ),
});
export type SubmitEnvelope = v.InferOutput<typeof SubmitEnvelopeSchema>;

/** The query of `POST /workflows/batch`. */
export const SubmitQuerySchema = v.object({
  validate: v.optional(
    v.pipe(FlagSchema, v.description('Only validate: 200 or 422 with every problem; no run')),
  ),
  dry_run: v.optional(v.pipe(FlagSchema, v.description('Only plan: 200 with the plan; no run'))),
  env: v.optional(
    v.pipe(v.string(), v.minLength(1), v.description("One of the workflow's environments")),
  ),
  set: v.optional(
    v.pipe(
      v.string(),
      v.description('An input value as key=value, like `muster run --set` (repeatable)'),
    ),
  ),
});

/** `201`/`200`: the run created, or the one an idempotency key already named. */
export const SubmitResultSchema = v.object({
  id: v.string(),
  name: v.string(),
  status: RunStatusSchema,
  created: v.pipe(v.boolean(), v.description('false when the idempotency key named a run')),
});
export type SubmitResult = v.InferOutput<typeof SubmitResultSchema>;

/** `?validate=1` on a valid workflow. */
export const ValidateResultSchema = v.object({
  valid: v.literal(true),
  problems: v.array(ProblemSchema),
});

// ── plans ───────────────────────────────────────────────────────────────────

/** A planned operation, as `muster plan -o json` prints it. */
export const PlannedOperationSchema = v.object({
  id: v.string(),
  level: v.number(),
  type: v.picklist(['create', 'update', 'delete', 'check']),
  target: v.picklist(['server', 'taskserv', 'cluster']),
  depends_on: v.array(v.string()),
  tasks: v.array(v.string()),
  parallel: v.boolean(),
  timeout: v.number(),
  on_failure: v.picklist(['fail', 'continue', 'rollback']),
  retry_policy: v.object({
    max_attempts: v.number(),
    backoff: v.string(),
    initial_delay: v.number(),
    max_delay: v.number(),
    non_retryable: v.array(v.string()),
  }),
  rollout: v.object({
    strategy: v.string(),
    batch_size: v.number(),
    batch_delay: v.number(),
    max_failures: v.number(),
    canary_percentage: v.number(),
    canary_promotion: v.string(),
  }),
});

/** A planned task. */
export const PlannedTaskSchema = v.object({
  id: v.string(),
  operation: v.string(),
  item: v.string(),
  server: v.optional(v.string()),
  queue: v.string(),
  action: v.optional(v.picklist(['create', 'delete', 'status'])),
  provider: v.optional(v.string()),
  steps: v.array(StepSchema),
  compensation: v.array(StepSchema),
  health_check: v.optional(HealthCheckSchema),
});

/** The JSON plan: operations by level, tasks, the edges between tasks and the barriers between operations. */
export const PlanSchema = v.object({
  workflow: v.string(),
  type: v.picklist(['batch', 'sequential', 'parallel']),
  operations: v.array(PlannedOperationSchema),
  tasks: v.array(PlannedTaskSchema),
  edges: v.array(
    v.object({
      from: v.string(),
      to: v.string(),
      type: v.picklist(['hard', 'soft']),
      reason: v.picklist(['depends_on', 'dependency', 'requires']),
    }),
  ),
  /** Every task of operation `to` waits for every task of operation `from`. */
  barriers: v.array(
    v.object({
      from: v.string(),
      to: v.string(),
      type: v.picklist(['hard', 'soft']),
      reason: v.picklist(['depends_on', 'dependency']),
    }),
  ),
});

/** `?dry_run=1`: the plan a submit would run. */
export const DryRunResultSchema = v.object({ plan: PlanSchema });

// ── listing and status ──────────────────────────────────────────────────────

const WholeNumberText = (what: string) =>
  v.pipe(v.string(), v.regex(/^\d{1,9}$/, what), v.transform(Number));

/** The query of `GET /workflows`. */
export const ListQuerySchema = v.object({
  status: v.optional(RunStatusSchema),
  name: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(200))),
  label: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[^=]+=.*$/, 'key=value'),
      v.description('key=value: runs carrying that label'),
    ),
  ),
  limit: v.optional(
    v.pipe(
      WholeNumberText(`a whole number from 1 to ${MAX_PAGE_SIZE}`),
      v.minValue(1, `a whole number from 1 to ${MAX_PAGE_SIZE}`),
      v.maxValue(MAX_PAGE_SIZE, `a whole number from 1 to ${MAX_PAGE_SIZE}`),
    ),
  ),
  cursor: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9_-]{1,400}$/, 'a next_cursor from a previous page'),
      v.description('The next_cursor of the previous page'),
    ),
  ),
});

/** A run in a list. */
export const RunListItemSchema = v.object({
  id: v.string(),
  name: v.string(),
  status: RunStatusSchema,
  labels: v.record(v.string(), v.string()),
  created_at: v.string(),
  started_at: v.nullable(v.string()),
  finished_at: v.nullable(v.string()),
  error: v.nullable(v.string()),
});
export type RunListItem = v.InferOutput<typeof RunListItemSchema>;

/** A page of runs, newest first. */
export const RunListSchema = v.object({
  items: v.array(RunListItemSchema),
  next_cursor: v.pipe(v.nullable(v.string()), v.description('null on the last page')),
});

/** Task counts by state. */
export const TaskCountsSchema = v.object({
  total: v.number(),
  pending: v.number(),
  running: v.number(),
  succeeded: v.number(),
  failed: v.number(),
  skipped: v.number(),
  cancelled: v.number(),
  rolled_back: v.number(),
});

/** `GET /workflows/{id}/status`: the run, its task counts and its operations. */
export const RunSummarySchema = v.object({
  id: v.string(),
  name: v.string(),
  status: RunStatusSchema,
  error: v.nullable(v.string()),
  created_at: v.string(),
  started_at: v.nullable(v.string()),
  finished_at: v.nullable(v.string()),
  duration_ms: v.nullable(v.number()),
  checkpoint: v.number(),
  tasks: TaskCountsSchema,
  operations: v.array(
    v.object({
      id: v.string(),
      level: v.number(),
      status: v.picklist(['pending', 'running', 'succeeded', 'failed', 'skipped', 'rolled_back']),
      tasks: TaskCountsSchema,
      started_at: v.nullable(v.string()),
      finished_at: v.nullable(v.string()),
      duration_ms: v.nullable(v.number()),
    }),
  ),
});

/** Attempt counts by outcome. */
export const AttemptCountsSchema = v.object({
  total: v.number(),
  running: v.number(),
  succeeded: v.number(),
  failed: v.number(),
  interrupted: v.number(),
  cancelled: v.number(),
});

/** Task durations of an operation (finished attempts), in milliseconds. */
export const DurationStatsSchema = v.object({
  count: v.number(),
  min_ms: v.nullable(v.number()),
  mean_ms: v.nullable(v.number()),
  max_ms: v.nullable(v.number()),
});

/** `GET /workflows/{id}/metrics`: counts and durations of one run. */
export const RunMetricsSchema = v.object({
  id: v.string(),
  status: RunStatusSchema,
  duration_ms: v.nullable(v.number()),
  tasks: TaskCountsSchema,
  attempts: AttemptCountsSchema,
  retries: v.pipe(v.number(), v.description('Attempts beyond the first of each task')),
  operations: v.array(
    v.object({
      id: v.string(),
      status: v.string(),
      duration_ms: v.nullable(v.number()),
      tasks: TaskCountsSchema,
      attempts: AttemptCountsSchema,
      retries: v.number(),
      task_duration: DurationStatsSchema,
    }),
  ),
});
export type RunMetrics = v.InferOutput<typeof RunMetricsSchema>;

// ── control ─────────────────────────────────────────────────────────────────

/** `POST /workflows/{id}/rollback`. */
export const RollbackBodySchema = v.strictObject({
  to_checkpoint: v.optional(
    v.pipe(
      v.number(),
      v.integer(),
      v.minValue(0),
      v.description('Keep what was done up to this checkpoint; undo only what came after'),
    ),
  ),
});

/** `POST /workflows/{id}/retry`. */
export const RetryBodySchema = v.strictObject({
  operation: v.optional(
    v.pipe(
      v.string(),
      v.minLength(1),
      v.description('Retry only this operation (and what was skipped because of it)'),
    ),
  ),
});

/** `POST /workflows/{id}/pause|resume|cancel|terminate`: no fields. */
export const EmptyBodySchema = v.strictObject({});

/** `202`: the action is committed (a rollback: under way); the run's status now. */
export const ControlResultSchema = v.object({ id: v.string(), status: RunStatusSchema });

// ── service ─────────────────────────────────────────────────────────────────

/** `GET /health`. */
export const HealthSchema = v.object({ status: v.literal('ok') });

/** `GET /cluster`: this replica, the runs it drives, and the replicas sharing its store. */
export const ClusterSchema = v.object({
  replica: v.string(),
  /** Whether runs are driven under leases (PostgreSQL); false on the embedded database. */
  leased: v.boolean(),
  driving: v.array(v.string()),
  replicas: v.array(
    v.object({
      id: v.string(),
      url: v.nullable(v.string()),
      host: v.string(),
      pid: v.number(),
      version: v.string(),
      started_at: v.string(),
      heartbeat_at: v.string(),
      live: v.boolean(),
    }),
  ),
});

/** `GET /ready`. */
export const ReadySchema = v.object({
  status: v.literal('ready'),
  store: v.picklist(['pglite', 'postgres']),
});
