/**
 * The workflow routes: submit (`POST /workflows/batch`, also validate-only and dry-run), list,
 * status, plan and per-run metrics.
 *
 * A submitted workflow is read as JSON (the workflow itself, or an envelope with its `source`),
 * YAML or CUE, then loaded and planned exactly as `muster validate` and `muster plan` do, so a bad
 * workflow gets the same located problems (a line in the request body) as a bad file.
 *
 * @module
 */
import { Hono, type Context } from 'hono';
import type { Orchestrator } from '../../orchestrator.ts';
import type { WorkflowFormat } from '../../../../schemas/src/load.ts';
import { resolveRunWorkflow } from '../../../../schemas/src/inputs.ts';
import { renderJsonChunks } from '../../plan/render-json.ts';
import { planBody } from '../plan-body.ts';
import { streamPieces } from '../stream-pieces.ts';
import { summarizeOverview, summarizeRun, type TaskCounts } from '../../status.ts';
import { RunNotFoundError } from '../../errors.ts';
import { checkServerLogging } from '../../logging/server-logs.ts';
import type { Attempt } from '../../store/store.ts';
import type { RunSnapshot } from '../../engine/types.ts';
import type { RunInfo } from '../../store/store.ts';
import { requireRole, type AuthEnv } from '../middleware/auth/index.ts';
import { limitBody } from '../middleware/body-limit/index.ts';
import { BadRequestError, IdempotencyConflictError, UnsupportedMediaTypeError } from '../errors.ts';
import {
  IdempotencyKeySchema,
  ListQuerySchema,
  SubmitEnvelopeSchema,
  SubmitQuerySchema,
  isOn,
  type RunListItem,
  type RunMetrics,
  type SubmitResult,
} from '../schemas.ts';
import { mediaType, parseQuery, parseRequest } from '../validate.ts';

/** Options of {@link workflowRoutes}. */
export interface WorkflowRoutesOptions {
  readonly orchestrator: Orchestrator;
  /** The largest body accepted, in bytes. */
  readonly bodyLimit: number;
}

/** Media types `POST /workflows/batch` reads, by the format they carry. */
export const SUBMIT_MEDIA_TYPES: Readonly<Record<string, WorkflowFormat>> = {
  'application/json': 'json',
  'application/yaml': 'yaml',
  'application/x-yaml': 'yaml',
  'text/yaml': 'yaml',
  'text/x-yaml': 'yaml',
  'text/x-cue': 'cue',
  'application/x-cue': 'cue',
};

/** The name problems give a workflow sent in a request body. */
const BODY_FILE = '<request body>';

/**
 * The workflow routes; reads need `viewer`, submit needs `operator`.
 *
 * @example
 * ```ts
 * app.route('/', workflowRoutes({ orchestrator, bodyLimit: 2 * 1024 * 1024 }));
 * ```
 */
export function workflowRoutes(options: WorkflowRoutesOptions): Hono<AuthEnv> {
  const { orchestrator } = options;
  const { store } = orchestrator;
  const app = new Hono<AuthEnv>();

  app.post('/workflows/batch', requireRole('operator'), limitBody(options.bodyLimit), async (c) => {
    const query = parseQuery(c, SubmitQuerySchema);
    const submission = await readSubmission(c);
    const { loaded, plan } = await orchestrator.prepare(submission.source, {
      format: submission.format,
      file: submission.file,
    });
    // Its logs go under the server's log directory: a path leaving it is refused here, located.
    checkServerLogging(loaded);
    // Input values: defaults, then the environment's, then those given, checked by type.
    const environment = submission.environment ?? query.env;
    const resolved = resolveRunWorkflow(loaded.workflow, {
      set: [...(c.req.queries('set') ?? []), ...submission.set],
      ...(environment !== undefined ? { environment } : {}),
      file: submission.file,
    });
    // A dry run is a validation that also answers with the plan.
    if (isOn(query.dry_run)) {
      return c.body(planBody({}, plan), 200, {
        'Content-Type': 'application/json; charset=utf-8',
      });
    }
    if (isOn(query.validate)) return c.json({ valid: true, problems: [] }, 200);

    const key = submission.idempotencyKey;
    const { run, created } = await orchestrator.submit(resolved.workflow, plan, {
      labels: { ...resolved.labels, ...submission.labels },
      ...(key !== undefined ? { idempotencyKey: key } : {}),
    });
    let status = run.status;
    if (created) {
      status = (await orchestrator.drive(run.id)).runStatus;
    } else if (key !== undefined && canonical(run.workflow) !== canonical(resolved.workflow)) {
      throw new IdempotencyConflictError(key, run.id);
    }
    c.header('Location', `/workflows/${encodeURIComponent(run.id)}/status`);
    return c.json(
      { id: run.id, name: run.name, status, created } satisfies SubmitResult,
      created ? 201 : 200,
    );
  });

  app.get('/workflows', requireRole('viewer'), async (c) => {
    const query = parseQuery(c, ListQuerySchema);
    const label = query.label === undefined ? undefined : splitLabel(query.label);
    if (query.cursor !== undefined && !isCursor(query.cursor)) {
      throw new BadRequestError(
        '?cursor= is not a next_cursor this server returned; start again without it',
        [{ code: 'query', path: 'cursor', message: '?cursor=: not a cursor from a previous page' }],
      );
    }
    const page = await store.listRuns({
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(query.name !== undefined ? { name: query.name } : {}),
      ...(label ? { label } : {}),
      ...(query.limit !== undefined ? { limit: query.limit } : {}),
      ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
    });
    return c.json({ items: page.items.map(listItem), next_cursor: page.nextCursor });
  });

  app.get('/workflows/:id/status', requireRole('viewer'), async (c) => {
    const id = c.req.param('id');
    const overview = await orchestrator.store.runOverview(id);
    if (!overview) throw new RunNotFoundError(id);
    return c.json(summarizeOverview(overview));
  });

  app.get('/workflows/:id/plan', requireRole('viewer'), async (c) => {
    const id = c.req.param('id');
    const run = await store.getRun(id);
    if (!run) throw new RunNotFoundError(id);
    return c.body(streamPieces(renderJsonChunks(run.plan)), 200, {
      'Content-Type': 'application/json; charset=utf-8',
    });
  });

  app.get('/workflows/:id/metrics', requireRole('viewer'), async (c) => {
    const snapshot = await snapshotOf(orchestrator, c.req.param('id'));
    const attempts = await store.attempts(snapshot.run.id);
    return c.json(runMetrics(snapshot, attempts));
  });

  return app;
}

interface Submission {
  readonly source: string;
  readonly format: WorkflowFormat;
  readonly file: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly idempotencyKey?: string;
  /** Input values as `key=value`, like `--set`. */
  readonly set: readonly string[];
  readonly environment?: string;
}

/** Reads the body of a submit in any of its forms, and the idempotency key. */
async function readSubmission(c: Context): Promise<Submission> {
  const type = mediaType(c.req.header('content-type'));
  const format = SUBMIT_MEDIA_TYPES[type];
  if (format === undefined) {
    throw new UnsupportedMediaTypeError(type, Object.keys(SUBMIT_MEDIA_TYPES));
  }
  const text = await c.req.text();
  if (text.trim() === '') {
    throw new BadRequestError(
      'the body is empty; send a workflow (JSON, YAML or CUE) or { "source", "format" }',
    );
  }
  const header = c.req.header('idempotency-key');
  const headerKey =
    header === undefined ? undefined : parseRequest(IdempotencyKeySchema, header, 'header');

  let submission: Submission = { source: text, format, file: BODY_FILE, set: [] };
  if (format === 'json') {
    const envelope = envelopeOf(text);
    if (envelope !== undefined) {
      const parsed = parseRequest(SubmitEnvelopeSchema, envelope, 'body');
      submission = {
        source: parsed.source,
        format: parsed.format,
        file: `${BODY_FILE} source`,
        ...(parsed.labels ? { labels: parsed.labels } : {}),
        ...(parsed.idempotency_key !== undefined ? { idempotencyKey: parsed.idempotency_key } : {}),
        ...(parsed.environment !== undefined ? { environment: parsed.environment } : {}),
        set: Object.entries(parsed.inputs ?? {}).map(
          ([name, value]) => `${name}=${Array.isArray(value) ? value.join(',') : String(value)}`,
        ),
      };
    }
  }
  if (headerKey !== undefined) {
    if (submission.idempotencyKey !== undefined && submission.idempotencyKey !== headerKey) {
      throw new BadRequestError(
        "the Idempotency-Key header and the body's idempotency_key differ; send one of them",
      );
    }
    submission = { ...submission, idempotencyKey: headerKey };
  }
  return submission;
}

/**
 * The envelope in a JSON body, if it is one: an object with a `source` field (a workflow has no
 * such field). Anything else, malformed JSON included, is read as the workflow itself, so its
 * problems come back located in the body.
 */
function envelopeOf(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return 'source' in value ? (value as Record<string, unknown>) : undefined;
}

async function snapshotOf(orchestrator: Orchestrator, id: string): Promise<RunSnapshot> {
  const snapshot = await orchestrator.store.loadRun(id);
  if (!snapshot) throw new RunNotFoundError(id);
  return snapshot;
}

function splitLabel(label: string): { key: string; value: string } {
  const at = label.indexOf('=');
  return { key: label.slice(0, at), value: label.slice(at + 1) };
}

/** Whether a cursor has the shape the store issues (base64url JSON `[created_at, id]`). */
function isCursor(cursor: string): boolean {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      !Number.isNaN(new Date(value[0]).getTime()) &&
      typeof value[1] === 'string'
    );
  } catch {
    return false;
  }
}

/** A run as `GET /workflows` lists it. */
export function listItem(run: RunInfo): RunListItem {
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    labels: { ...run.labels },
    created_at: run.createdAt.toISOString(),
    started_at: run.startedAt?.toISOString() ?? null,
    finished_at: run.finishedAt?.toISOString() ?? null,
    error: run.error,
  };
}

/** JSON with keys sorted, to compare two workflows whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Counts and durations of one run, from its state and its attempts. */
export function runMetrics(snapshot: RunSnapshot, attempts: readonly Attempt[]): RunMetrics {
  const summary = summarizeRun(snapshot);
  const opOf = new Map(snapshot.tasks.map((t) => [t.id, t.operationId]));
  const byOp = new Map<string, Attempt[]>();
  for (const attempt of attempts) {
    const op = opOf.get(attempt.taskId);
    if (op === undefined) continue;
    const list = byOp.get(op) ?? [];
    list.push(attempt);
    byOp.set(op, list);
  }
  return {
    id: summary.id,
    status: summary.status,
    duration_ms: summary.duration_ms,
    tasks: summary.tasks,
    attempts: attemptCounts(attempts),
    retries: retriesOf(attempts),
    operations: summary.operations.map((o) => {
      const list = byOp.get(o.id) ?? [];
      return {
        id: o.id,
        status: o.status,
        duration_ms: o.duration_ms,
        tasks: o.tasks satisfies TaskCounts,
        attempts: attemptCounts(list),
        retries: retriesOf(list),
        task_duration: durationStats(list),
      };
    }),
  };
}

function attemptCounts(attempts: readonly Attempt[]): RunMetrics['attempts'] {
  const counts = { total: 0, running: 0, succeeded: 0, failed: 0, interrupted: 0, cancelled: 0 };
  for (const a of attempts) {
    counts.total++;
    counts[a.status]++;
  }
  return counts;
}

function retriesOf(attempts: readonly Attempt[]): number {
  return attempts.length - new Set(attempts.map((a) => a.taskId)).size;
}

function durationStats(
  attempts: readonly Attempt[],
): RunMetrics['operations'][number]['task_duration'] {
  const ms = attempts
    .filter((a) => a.finishedAt !== null)
    .map((a) => a.finishedAt!.getTime() - a.startedAt.getTime());
  if (ms.length === 0) return { count: 0, min_ms: null, mean_ms: null, max_ms: null };
  return {
    count: ms.length,
    min_ms: ms.reduce((a, b) => Math.min(a, b)),
    mean_ms: Math.round(ms.reduce((a, b) => a + b, 0) / ms.length),
    max_ms: ms.reduce((a, b) => Math.max(a, b)),
  };
}
