/**
 * The OpenAPI 3.1 document of the REST API, generated from the routes' valibot schemas with
 * `@valibot/to-json-schema` (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Only the route
 * table below is written by hand: which schema each route reads and answers with; a test holds it
 * equal to the routes the app really serves.
 *
 * @module
 */
import { toJsonSchemaDefs, type JsonSchema } from '@valibot/to-json-schema';
import type * as v from 'valibot';
import { WorkflowSchema } from '../../../schemas/src/workflow.ts';
import type { Role } from './auth.ts';
import { LogsPageSchema, LogsQuerySchema } from './routes/logs.ts';
import { SUBMIT_MEDIA_TYPES } from './routes/workflows.ts';
import { CONTROL_BODIES } from './routes/control.ts';
import { ExecutionRequestSchema } from '../compat/executions.ts';
import { ClientMessageSchema, ServerMessageSchema, WireEventSchema } from '../ws/protocol.ts';
import {
  ControlResultSchema,
  DryRunResultSchema,
  HealthSchema,
  ListQuerySchema,
  PlanSchema,
  ProblemDetailsSchema,
  ProblemSchema,
  ReadySchema,
  ClusterSchema,
  RunListItemSchema,
  RunListSchema,
  RunMetricsSchema,
  RunSummarySchema,
  SubmitEnvelopeSchema,
  SubmitQuerySchema,
  SubmitResultSchema,
  ValidateResultSchema,
} from './schemas.ts';

/** Schemas published under `components.schemas`, by name; routes refer to them by `$ref`. */
const COMPONENTS = {
  Problem: ProblemSchema,
  ProblemDetails: ProblemDetailsSchema,
  Workflow: WorkflowSchema,
  SubmitEnvelope: SubmitEnvelopeSchema,
  SubmitResult: SubmitResultSchema,
  ExecutionRequest: ExecutionRequestSchema,
  ValidateResult: ValidateResultSchema,
  Plan: PlanSchema,
  DryRunResult: DryRunResultSchema,
  RunListItem: RunListItemSchema,
  RunList: RunListSchema,
  RunSummary: RunSummarySchema,
  RunMetrics: RunMetricsSchema,
  Event: WireEventSchema,
  LogsPage: LogsPageSchema,
  RollbackRequest: CONTROL_BODIES.rollback,
  RetryRequest: CONTROL_BODIES.retry,
  EmptyRequest: CONTROL_BODIES.pause,
  ControlResult: ControlResultSchema,
  Health: HealthSchema,
  Ready: ReadySchema,
  Cluster: ClusterSchema,
  WsClientMessage: ClientMessageSchema,
  WsServerMessage: ServerMessageSchema,
} satisfies Record<string, v.GenericSchema>;

type ComponentName = keyof typeof COMPONENTS;

/** A body or answer: a component by name, or plain text. */
type Content = ComponentName | 'text';

/** One route, as the document describes it. */
export interface RouteDoc {
  readonly method: 'get' | 'post';
  /** OpenAPI style: `/workflows/{id}/status`. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  /** The role it needs; `null` for the one open route. */
  readonly role: Role | null;
  readonly query?: v.ObjectSchema<v.ObjectEntries, undefined>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: { readonly required: boolean; readonly content: Record<string, Content> };
  readonly responses: Record<
    number,
    { readonly description: string; readonly content?: Record<string, Content> }
  >;
}

const JSON_TYPE = 'application/json';
const RUN_ACTION_SUMMARIES: Record<keyof typeof CONTROL_BODIES, [string, ComponentName]> = {
  rollback: ['Roll a stopped run back (to a checkpoint)', 'RollbackRequest'],
  retry: ['Retry what failed, was skipped, cancelled or rolled back', 'RetryRequest'],
  pause: ['Pause: start no new tasks; running ones finish', 'EmptyRequest'],
  resume: ['Resume a paused run (and approve a waiting canary)', 'EmptyRequest'],
  cancel: ['Cancel: running tasks finish, nothing new starts', 'EmptyRequest'],
  terminate: ['Terminate: abort running tasks, compensate nothing', 'EmptyRequest'],
};

/** Every route of the API. */
export const ROUTES: readonly RouteDoc[] = [
  {
    method: 'post',
    path: '/workflows/batch',
    operationId: 'submitWorkflow',
    summary: 'Submit a workflow; or only validate it, or only plan it',
    description:
      'The body is a workflow (JSON), an envelope `{ source, format, labels?, idempotency_key? }` ' +
      '(JSON), or the source itself as YAML or CUE. The run starts at once. A repeated ' +
      '`Idempotency-Key` answers 200 with the existing run and `created: false`.',
    role: 'operator',
    query: SubmitQuerySchema,
    headers: { 'Idempotency-Key': 'Returns the existing run when repeated (1–255 characters)' },
    body: {
      required: true,
      content: {
        [JSON_TYPE]: 'Workflow',
        ...Object.fromEntries(
          Object.keys(SUBMIT_MEDIA_TYPES)
            .filter((t) => t !== JSON_TYPE)
            .map((t) => [t, 'text' as const]),
        ),
      },
    },
    responses: {
      200: {
        description: 'Validated (`?validate=1`), planned (`?dry_run=1`), or the existing run',
        content: { [JSON_TYPE]: 'SubmitResult' },
      },
      201: {
        description: 'The run, created and started',
        content: { [JSON_TYPE]: 'SubmitResult' },
      },
      409: { description: 'The idempotency key was used for a different workflow' },
      422: { description: 'The workflow is invalid: every problem, located (MUS2001)' },
    },
  },
  {
    method: 'post',
    path: '/executions',
    operationId: 'submitExecution',
    summary: 'Submit a fleet rollout in the reference request format',
    description:
      'The body is `{ servers, steps, rolloutStrategy }` as the reference (Kitsune) takes it; it ' +
      'becomes one `update` operation over those servers and runs as `POST /workflows/batch` ' +
      'would. See compat/executions.ts for the mapping.',
    role: 'operator',
    query: SubmitQuerySchema,
    headers: { 'Idempotency-Key': 'Returns the existing run when repeated (1–255 characters)' },
    body: { required: true, content: { [JSON_TYPE]: 'ExecutionRequest' } },
    responses: {
      200: {
        description:
          'Validated (`?validate=1`), translated and planned (`?dry_run=1`), or the existing run',
        content: { [JSON_TYPE]: 'SubmitResult' },
      },
      201: {
        description: 'The run, created and started',
        content: { [JSON_TYPE]: 'SubmitResult' },
      },
      409: { description: 'The idempotency key was used for a different request' },
      422: {
        description:
          'Muster refuses the translated workflow: every problem, located in the request',
      },
    },
  },
  {
    method: 'get',
    path: '/workflows',
    operationId: 'listWorkflows',
    summary: 'List runs, newest first, with cursor pagination',
    role: 'viewer',
    query: ListQuerySchema,
    responses: { 200: { description: 'A page of runs', content: { [JSON_TYPE]: 'RunList' } } },
  },
  {
    method: 'get',
    path: '/workflows/{id}/status',
    operationId: 'getWorkflowStatus',
    summary: 'A run: its status, task counts and operations',
    role: 'viewer',
    responses: { 200: { description: 'The run', content: { [JSON_TYPE]: 'RunSummary' } } },
  },
  {
    method: 'get',
    path: '/workflows/{id}/logs',
    operationId: 'getWorkflowLogs',
    summary: "A run's event log: a page, an SSE stream (`?follow=1`) or NDJSON",
    description:
      'With `?follow=1`, Server-Sent Events (`id:` = seq, `event:` = type, `data:` = event ' +
      'JSON), resumable with `Last-Event-ID`, ending once the run has ended. With ' +
      '`Accept: application/x-ndjson`, one event JSON a line.',
    role: 'viewer',
    query: LogsQuerySchema,
    headers: { 'Last-Event-ID': 'Resume an SSE stream after this seq' },
    responses: {
      200: {
        description: 'Events in order',
        content: {
          [JSON_TYPE]: 'LogsPage',
          'text/event-stream': 'text',
          'application/x-ndjson': 'text',
        },
      },
      204: { description: 'An ended run with nothing after Last-Event-ID: stop reconnecting' },
    },
  },
  {
    method: 'get',
    path: '/workflows/{id}/plan',
    operationId: 'getWorkflowPlan',
    summary: 'The plan a run executes',
    role: 'viewer',
    responses: { 200: { description: 'The plan', content: { [JSON_TYPE]: 'Plan' } } },
  },
  {
    method: 'get',
    path: '/workflows/{id}/metrics',
    operationId: 'getWorkflowMetrics',
    summary: 'Counts and durations of one run: tasks, attempts, retries, per operation',
    role: 'viewer',
    responses: { 200: { description: 'The figures', content: { [JSON_TYPE]: 'RunMetrics' } } },
  },
  ...Object.entries(RUN_ACTION_SUMMARIES).map(([action, [summary, body]]): RouteDoc => ({
    method: 'post',
    path: `/workflows/{id}/${action}`,
    operationId: `${action}Workflow`,
    summary,
    role: 'operator',
    body: { required: false, content: { [JSON_TYPE]: body } },
    responses: {
      202: {
        description: 'Committed (a rollback: under way); the status now',
        content: { [JSON_TYPE]: 'ControlResult' },
      },
      409: { description: "The run's state forbids it (ORC1002), or tasks still run (ORC1204)" },
      422: { description: 'No such checkpoint (ORC1203) or operation (ORC1205)' },
    },
  })),
  {
    method: 'get',
    path: '/health',
    operationId: 'getHealth',
    summary: 'Liveness; the one route without a token',
    role: null,
    responses: { 200: { description: 'Alive', content: { [JSON_TYPE]: 'Health' } } },
  },
  {
    method: 'get',
    path: '/ready',
    operationId: 'getReady',
    summary: 'Readiness: the store answers',
    role: 'viewer',
    responses: {
      200: { description: 'Ready', content: { [JSON_TYPE]: 'Ready' } },
      503: { description: 'The store does not answer' },
    },
  },
  {
    method: 'get',
    path: '/cluster',
    operationId: 'getCluster',
    summary: 'This replica, the runs it drives, and the replicas sharing its PostgreSQL',
    role: 'viewer',
    responses: { 200: { description: 'The cluster', content: { [JSON_TYPE]: 'Cluster' } } },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics (text exposition format 0.0.4)',
    role: 'viewer',
    responses: { 200: { description: 'Metrics', content: { 'text/plain': 'text' } } },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApi',
    summary: 'This document',
    role: 'viewer',
    responses: { 200: { description: 'OpenAPI 3.1', content: { [JSON_TYPE]: 'text' } } },
  },
  {
    method: 'get',
    path: '/ws',
    operationId: 'openWebSocket',
    summary: 'WebSocket: live events of some runs or all, replayed from a position',
    description:
      'Upgrade with the token as `Authorization: Bearer` or `?token=`. The client sends ' +
      '`WsClientMessage`s (subscribe, unsubscribe), the server `WsServerMessage`s (subscribed, ' +
      'event, end, unsubscribed, error). Pings every 15 s; a client too slow to keep up is ' +
      'closed with 1013 and reconnects with its last seq.',
    role: 'viewer',
    responses: { 101: { description: 'Switching protocols to WebSocket' } },
  },
];

/** Options of {@link buildOpenApi}. */
export interface OpenApiOptions {
  /** @default '0.1.0' */
  readonly version?: string;
}

/**
 * Builds the OpenAPI 3.1 document.
 *
 * @param options The API version to state.
 *
 * @returns The document, as plain JSON.
 */
export function buildOpenApi(options: OpenApiOptions = {}): Record<string, unknown> {
  const defs = toJsonSchemaDefs(COMPONENTS, {
    target: 'draft-2020-12',
    typeMode: 'input',
    errorMode: 'ignore',
  });
  // The converter refers to definitions as `#/$defs/NAME`; OpenAPI keeps them in components.
  const schemas = JSON.parse(
    JSON.stringify(defs).replaceAll('"#/$defs/', '"#/components/schemas/'),
  ) as Record<string, JsonSchema>;

  const ref = (content: Content) =>
    content === 'text' ? { type: 'string' } : { $ref: `#/components/schemas/${content}` };
  const problem = (description: string) => ({
    description,
    content: { 'application/problem+json': { schema: ref('ProblemDetails') } },
  });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const parameters: unknown[] = [];
    if (route.path.includes('{id}')) {
      parameters.push({
        name: 'id',
        in: 'path',
        required: true,
        description: 'The run id',
        schema: { type: 'string' },
      });
    }
    for (const [name, schema] of Object.entries(route.query?.entries ?? {})) {
      const optional = schema.type === 'optional';
      const inner = optional
        ? (schema as v.OptionalSchema<v.GenericSchema, undefined>).wrapped
        : schema;
      parameters.push({
        name,
        in: 'query',
        required: !optional,
        schema: toJsonSchemaDefs(
          { s: inner },
          { target: 'draft-2020-12', typeMode: 'input', errorMode: 'ignore' },
        ).s,
      });
    }
    for (const [name, description] of Object.entries(route.headers ?? {})) {
      parameters.push({
        name,
        in: 'header',
        required: false,
        description,
        schema: { type: 'string' },
      });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, answer] of Object.entries(route.responses)) {
      responses[status] = answer.content
        ? {
            description: answer.description,
            content: Object.fromEntries(
              Object.entries(answer.content).map(([type, c]) => [type, { schema: ref(c) }]),
            ),
          }
        : problem(answer.description);
    }
    if (route.query || route.body || route.headers) {
      responses['400'] ??= problem('The request is malformed (API4001): every problem, by path');
    }
    if (route.role !== null) {
      responses['401'] = problem('No token, or an unknown one (API4010)');
      responses['403'] = problem(`The token's role is not ${route.role} (API4030)`);
    }
    if (route.path.includes('{id}')) responses['404'] = problem('No such run (ORC1001)');
    if (route.body) {
      responses['413'] = problem('The body is over the limit (API4130)');
      responses['415'] = problem('The body is of a type the route does not read (API4150)');
    }
    responses['default'] = problem('An unexpected error (API5000)');

    paths[route.path] ??= {};
    paths[route.path]![route.method] = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [route.path.startsWith('/workflows') ? 'workflows' : 'service'],
      security: route.role === null ? [] : [{ bearer: [] }],
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: route.body.required,
              content: Object.fromEntries(
                Object.entries(route.body.content).map(([type, c]) => [
                  type,
                  {
                    schema:
                      type === JSON_TYPE && c === 'Workflow'
                        ? { oneOf: [ref('Workflow'), ref('SubmitEnvelope')] }
                        : ref(c),
                  },
                ]),
              ),
            },
          }
        : {}),
      responses,
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Muster orchestrator API',
      version: options.version ?? '0.1.0',
      description:
        'Submit, watch and control batch workflows. JSON is snake_case; errors are RFC 9457 ' +
        'problem details with a stable `code`.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [
      { name: 'workflows', description: 'Runs of workflows' },
      { name: 'service', description: 'Health, readiness, metrics and this document' },
    ],
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A token from the tokens file or MUSTER_TOKENS (role viewer or operator)',
        },
      },
    },
  };
}
