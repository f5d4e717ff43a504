/**
 * The {@link Store} over any drizzle PostgreSQL database: PGlite and PostgreSQL share this code and
 * differ only in their driver (`pglite/`, `postgres/`).
 *
 * A batch is written with a handful of statements whatever its size: task, attempt and event rows
 * travel as one JSON array each and are expanded by `jsonb_to_recordset`, which keeps the per-task
 * cost of a commit low and never hits the bind-parameter limit.
 *
 * @module
 */
import { and, asc, desc, eq, getTableColumns, gt, lt, or, sql } from 'drizzle-orm';
import type { SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { LeaseLostError, StoreError, storeOperation } from './errors.ts';
import type { Attempt, NewRun, RunFilter, RunInfo, RunPage, Store } from './store.ts';
import { decodePlan, encodePlan } from './plan-encoding.ts';
import * as t from './tables.ts';
import { createSqlAgentStore } from './agent-store.ts';
import { createSqlClusterStore } from './cluster-store.ts';
import type {
  Batch,
  Fence,
  RunSnapshot,
  RunOverview,
  Checkpoint,
  EventType,
  OperationState,
  Run,
  RunEvent,
  RunStatus,
  TaskFailure,
  TaskResult,
  TaskState,
  TaskStatus,
  OperationStatus,
} from '../engine/types.ts';

/** The columns of a run but its workflow and plan: listings and answers that need no more. */
const { workflow: _workflow, plan: _plan, ...RUN_INFO_COLUMNS } = getTableColumns(t.runs);

/** Any drizzle PostgreSQL database, whatever its driver. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPgDatabase = PgDatabase<PgQueryResultHKT, any, any>;

/** What a driver supplies: the database and how to migrate and close it. */
export interface Driver {
  readonly name: 'pglite' | 'postgres';
  readonly db: AnyPgDatabase;
  /**
   * Runs a statement sent again and again with other values (the commit) as a prepared
   * statement, parsed once per connection (and planned once when a generic plan serves); the
   * result is in the driver's own shape.
   */
  executePrepared(query: SQL): Promise<unknown>;
  migrate(): Promise<void>;
  close(): Promise<void>;
  /**
   * Listens on a notification channel; `onListen` is called once listening and again after each
   * reconnection (notifications sent meanwhile are lost: catch up then).
   */
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    onListen?: () => void,
  ): Promise<() => Promise<void>>;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

/** Creates a store over a driver. */
export function createSqlStore(driver: Driver): Store {
  const { db } = driver;

  const store: Store = {
    driver: driver.name,
    agents: createSqlAgentStore(db),
    cluster: createSqlClusterStore(db),

    listen: (channel, onMessage, onListen) =>
      storeOperation(`listen on ${channel}`, () => driver.listen(channel, onMessage, onListen)),

    migrate: () => storeOperation('migrate', () => driver.migrate()),

    ping: () =>
      storeOperation('ping', async () => {
        await db.execute(sql`select 1`);
      }),

    close: () => driver.close(),

    createRun: (input: NewRun) =>
      storeOperation('createRun', async () =>
        db.transaction(async (tx) => {
          if (input.idempotencyKey) {
            const [existing] = await tx
              .select()
              .from(t.runs)
              .where(eq(t.runs.idempotency_key, input.idempotencyKey));
            if (existing) return { run: toRun(existing), created: false };
          }
          const [row] = await tx
            .insert(t.runs)
            .values({
              id: input.id,
              name: input.name,
              status: 'pending',
              workflow: input.workflow,
              plan: encodePlan(input.plan),
              labels: { ...input.labels },
              idempotency_key: input.idempotencyKey ?? null,
              ...(input.lease
                ? {
                    lease_owner: input.lease.owner,
                    lease_token: 1,
                    lease_expires_at: sql`now() + ${`${input.lease.ttlMs} milliseconds`}::interval`,
                  }
                : {}),
            })
            // Not the plan and workflow it was given: reading them back cost as much as writing.
            .returning(RUN_INFO_COLUMNS);
          const operations = input.plan.operations.map((op, position) => ({
            id: op.id,
            position,
            level: op.level,
          }));
          await tx.execute(sql`
            insert into operations (run_id, id, position, level, status)
            select ${input.id}, o.id, o.position, o.level, 'pending'
            from jsonb_to_recordset(${JSON.stringify(operations)}::jsonb)
              as o(id text, position int, level int)`);
          const tasks = input.plan.tasks.map((task, position) => ({
            id: task.id,
            operation_id: task.operation,
            position,
            queue: task.queue,
          }));
          await tx.execute(sql`
            insert into tasks (run_id, id, operation_id, position, queue, status)
            select ${input.id}, k.id, k.operation_id, k.position, k.queue, 'pending'
            from jsonb_to_recordset(${JSON.stringify(tasks)}::jsonb)
              as k(id text, operation_id text, position int, queue text)`);
          return {
            run: { ...toRunInfo(row!), plan: input.plan, workflow: input.workflow },
            created: true,
          };
        }),
      ),

    getRun: (id) =>
      storeOperation('getRun', async () => {
        const [row] = await db.select().from(t.runs).where(eq(t.runs.id, id));
        return row ? toRun(row) : undefined;
      }),

    runStatus: (id) =>
      storeOperation('runStatus', async () => {
        const [row] = await db
          .select({ status: t.runs.status })
          .from(t.runs)
          .where(eq(t.runs.id, id));
        return row?.status as RunStatus | undefined;
      }),

    listRuns: (filter: RunFilter = {}) =>
      storeOperation('listRuns', async () => {
        const limit = Math.min(Math.max(filter.limit ?? DEFAULT_PAGE, 1), MAX_PAGE);
        const conditions = [];
        if (filter.status) conditions.push(eq(t.runs.status, filter.status));
        if (filter.name) conditions.push(eq(t.runs.name, filter.name));
        if (filter.label) {
          conditions.push(
            sql`${t.runs.labels} @> ${JSON.stringify({ [filter.label.key]: filter.label.value })}::jsonb`,
          );
        }
        if (filter.cursor) {
          const { createdAt, id } = decodeCursor(filter.cursor);
          conditions.push(
            or(
              lt(t.runs.created_at, createdAt),
              and(eq(t.runs.created_at, createdAt), lt(t.runs.id, id)),
            ),
          );
        }
        // Without the workflow and plan columns: a page of big runs stays a small read.
        const rows = await db
          .select(RUN_INFO_COLUMNS)
          .from(t.runs)
          .where(conditions.length ? and(...conditions) : undefined)
          .orderBy(desc(t.runs.created_at), desc(t.runs.id))
          .limit(limit + 1);
        const items = rows.slice(0, limit).map(toRunInfo);
        const last = items[items.length - 1];
        return {
          items,
          nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null,
        } satisfies RunPage;
      }),

    loadRun: (id) =>
      storeOperation('loadRun', async () => {
        const [row] = await db.select().from(t.runs).where(eq(t.runs.id, id));
        if (!row) return undefined;
        const [operations, tasks, checkpoints, last] = await Promise.all([
          db
            .select()
            .from(t.operations)
            .where(eq(t.operations.run_id, id))
            .orderBy(asc(t.operations.position)),
          db.select().from(t.tasks).where(eq(t.tasks.run_id, id)).orderBy(asc(t.tasks.position)),
          db
            .select()
            .from(t.checkpoints)
            .where(eq(t.checkpoints.run_id, id))
            .orderBy(asc(t.checkpoints.number)),
          db
            .select({ seq: sql<number>`coalesce(max(${t.events.seq}), 0)` })
            .from(t.events)
            .where(eq(t.events.run_id, id)),
        ]);
        return {
          run: toRun(row),
          operations: operations.map(toOperation),
          tasks: tasks.map(toTask),
          checkpoints: checkpoints.map(toCheckpoint),
          lastSeq: Number(last[0]?.seq ?? 0),
        } satisfies RunSnapshot;
      }),

    runOverview: (id) =>
      storeOperation('runOverview', async () => {
        const [row] = await db.select(RUN_INFO_COLUMNS).from(t.runs).where(eq(t.runs.id, id));
        if (!row) return undefined;
        const [operations, counts] = await Promise.all([
          db
            .select()
            .from(t.operations)
            .where(eq(t.operations.run_id, id))
            .orderBy(asc(t.operations.position)),
          db
            .select({
              operationId: t.tasks.operation_id,
              status: t.tasks.status,
              count: sql<number>`count(*)::int`,
            })
            .from(t.tasks)
            .where(eq(t.tasks.run_id, id))
            .groupBy(t.tasks.operation_id, t.tasks.status),
        ]);
        return {
          run: toRunInfo(row),
          operations: operations.map(toOperation),
          taskCounts: counts.map((c) => ({
            operationId: c.operationId,
            status: c.status as TaskStatus,
            count: Number(c.count),
          })),
        } satisfies RunOverview;
      }),

    commit: (runId: string, batch: Batch, fence?: Fence) =>
      storeOperation('commit', async () => {
        // Prepared: parsing and planning the statement cost more than running it (PGlite, a
        // chain's commit: 1.9-2.1 ms unprepared, 0.6-0.9 prepared), and a task waits for it.
        const statement = commitStatement(runId, batch, fence);
        const { n, ids } = commitRow(await driver.executePrepared(statement));
        if (fence && n === 0) throw new LeaseLostError(runId, fence.owner);
        return ids;
      }),

    events: (runId, afterSeq = 0, limit = 10_000) =>
      storeOperation('events', async () => {
        const rows = await db
          .select()
          .from(t.events)
          .where(and(eq(t.events.run_id, runId), gt(t.events.seq, afterSeq)))
          .orderBy(asc(t.events.seq))
          .limit(limit);
        return rows.map(toEvent);
      }),

    allEvents: (afterId = 0, limit = 10_000) =>
      storeOperation('allEvents', async () => {
        const rows = await db
          .select()
          .from(t.events)
          .where(gt(t.events.id, afterId))
          .orderBy(asc(t.events.id))
          .limit(limit);
        return rows.map(toEvent);
      }),

    attempts: (runId, taskId) =>
      storeOperation('attempts', async () => {
        const rows = await db
          .select()
          .from(t.attempts)
          .where(
            taskId
              ? and(eq(t.attempts.run_id, runId), eq(t.attempts.task_id, taskId))
              : eq(t.attempts.run_id, runId),
          )
          .orderBy(asc(t.attempts.task_id), asc(t.attempts.attempt));
        return rows.map((r): Attempt => ({
          runId: r.run_id,
          taskId: r.task_id,
          attempt: r.attempt,
          status: r.status as Attempt['status'],
          startedAt: r.started_at,
          finishedAt: r.finished_at,
          failure: r.failure as TaskFailure | null,
        }));
      }),

    acquireLease: (runId, owner, ttlMs) =>
      storeOperation('acquireLease', async () => {
        const rows = await db
          .update(t.runs)
          .set({
            lease_owner: owner,
            lease_token: sql`${t.runs.lease_token} + 1`,
            lease_expires_at: sql`now() + ${`${ttlMs} milliseconds`}::interval`,
          })
          .where(
            and(
              eq(t.runs.id, runId),
              or(
                sql`${t.runs.lease_owner} is null`,
                eq(t.runs.lease_owner, owner),
                sql`${t.runs.lease_expires_at} < now()`,
              ),
            ),
          )
          .returning({ token: t.runs.lease_token });
        return rows[0]?.token;
      }),

    renewLease: (runId, fence, ttlMs) =>
      storeOperation('renewLease', async () => {
        const rows = await db
          .update(t.runs)
          .set({ lease_expires_at: sql`now() + ${`${ttlMs} milliseconds`}::interval` })
          .where(
            and(
              eq(t.runs.id, runId),
              eq(t.runs.lease_owner, fence.owner),
              eq(t.runs.lease_token, fence.token),
            ),
          )
          .returning({ id: t.runs.id });
        return rows.length > 0;
      }),

    releaseLease: (runId, fence) =>
      storeOperation('releaseLease', async () => {
        await db
          .update(t.runs)
          .set({ lease_owner: null, lease_expires_at: null })
          .where(
            and(
              eq(t.runs.id, runId),
              eq(t.runs.lease_owner, fence.owner),
              eq(t.runs.lease_token, fence.token),
            ),
          );
      }),
  };
  return store;
}

/**
 * One statement writes a whole batch: data-modifying CTEs, each fed by a JSON array, all gated on
 * the update of the run row, which checks the fence and locks the row. A single statement is
 * atomic, needs no BEGIN/COMMIT, and costs one round trip (under 1 ms on PGlite here, prepared).
 *
 * The task and operation updates also name their ids as an array (`id = any(array(...))`), which
 * the primary key answers: joined to the recordset alone, the planner (which guesses 100 rows for
 * it and, on PGlite, never has statistics) read every row of the run at every commit, so a commit
 * cost grew with the run (3,000 tasks: 2.1 ms of 3.3).
 */
function commitStatement(runId: string, batch: Batch, fence: Fence | undefined) {
  const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
  const run = batch.run;
  const payload = {
    run: run
      ? {
          ...(run.status !== undefined ? { status: run.status } : {}),
          ...(run.error !== undefined ? { error: run.error } : {}),
          ...(run.startedAt !== undefined ? { started_at: iso(run.startedAt) } : {}),
          ...(run.finishedAt !== undefined ? { finished_at: iso(run.finishedAt) } : {}),
          ...(run.checkpoint !== undefined ? { checkpoint: run.checkpoint } : {}),
        }
      : {},
    operations: (batch.operations ?? []).map((o) => ({
      id: o.id,
      status: o.status,
      started_at: iso(o.startedAt),
      finished_at: iso(o.finishedAt),
    })),
    tasks: (batch.tasks ?? []).map((k) => ({
      id: k.id,
      status: k.status,
      attempts: k.attempts,
      attempt_base: k.attemptBase,
      not_before: iso(k.notBefore),
      finished_seq: k.finishedSeq,
      started_at: iso(k.startedAt),
      finished_at: iso(k.finishedAt),
      result: k.result,
      failure: k.failure,
      compensated: k.compensated,
    })),
    attempts: (batch.attempts ?? []).map((a) => ({
      task_id: a.taskId,
      attempt: a.attempt,
      status: a.status,
      started_at: iso(a.startedAt),
      finished_at: iso(a.finishedAt),
      failure: a.failure,
    })),
    events: (batch.events ?? []).map((e) => ({
      seq: e.seq,
      type: e.type,
      at: iso(e.at),
      operation_id: e.operationId,
      task_id: e.taskId,
      data: e.data,
    })),
    checkpoints: batch.checkpoint
      ? [
          {
            number: batch.checkpoint.number,
            at: iso(batch.checkpoint.at),
            event_seq: batch.checkpoint.eventSeq,
            completed_operations: batch.checkpoint.completedOperations,
            completed_tasks: batch.checkpoint.completedTasks,
          },
        ]
      : [],
  };
  const set = (field: string, cast: string, column: string) =>
    sql.raw(
      `${column} = case when p.j->'run' ? '${field}' then (p.j->'run'->>'${field}')${cast} else r.${column} end`,
    );
  // Without a fence or a run-level change, the gate only has to find the run: a read, not a write.
  const gate =
    !fence && !run
      ? sql`f as (select r.id from runs r where r.id = ${runId})`
      : sql`f as (
      update runs r set updated_at = now(),
        ${set('status', '', 'status')}, ${set('error', '', 'error')},
        ${set('started_at', '::timestamptz', 'started_at')},
        ${set('finished_at', '::timestamptz', 'finished_at')},
        ${set('checkpoint', '::int', 'checkpoint')}
      from p
      where r.id = ${runId}
        and (${fence?.owner ?? null}::text is null
             or (r.lease_owner = ${fence?.owner ?? null} and r.lease_token = ${fence?.token ?? 0}))
      returning r.id
    )`;
  return sql`
    with p as (select ${JSON.stringify(payload)}::jsonb as j),
    ${gate},
    o as (
      update operations o set status = u.status, started_at = u.started_at, finished_at = u.finished_at
      from jsonb_to_recordset((select j->'operations' from p))
        as u(id text, status text, started_at timestamptz, finished_at timestamptz)
      where o.run_id = ${runId} and o.id = u.id and exists (select 1 from f)
        and o.id = any(array(select x->>'id' from jsonb_array_elements((select j->'operations' from p)) x))
      returning 1
    ),
    t as (
      update tasks k set status = u.status, attempts = u.attempts, attempt_base = u.attempt_base,
        not_before = u.not_before, finished_seq = u.finished_seq, started_at = u.started_at,
        finished_at = u.finished_at, result = u.result, failure = u.failure,
        compensated = u.compensated
      from jsonb_to_recordset((select j->'tasks' from p))
        as u(id text, status text, attempts int, attempt_base int, not_before timestamptz,
             finished_seq bigint, started_at timestamptz, finished_at timestamptz, result jsonb,
             failure jsonb, compensated boolean)
      where k.run_id = ${runId} and k.id = u.id and exists (select 1 from f)
        and k.id = any(array(select x->>'id' from jsonb_array_elements((select j->'tasks' from p)) x))
      returning 1
    ),
    a as (
      insert into attempts (run_id, task_id, attempt, status, started_at, finished_at, failure)
      select ${runId}, u.task_id, u.attempt, u.status, u.started_at, u.finished_at, u.failure
      from jsonb_to_recordset((select j->'attempts' from p))
        as u(task_id text, attempt int, status text, started_at timestamptz,
             finished_at timestamptz, failure jsonb)
      where exists (select 1 from f)
      on conflict (run_id, task_id, attempt) do update set status = excluded.status,
        finished_at = excluded.finished_at, failure = excluded.failure
      returning 1
    ),
    e as (
      insert into events (run_id, seq, type, at, operation_id, task_id, data)
      select ${runId}, u.seq, u.type, u.at, u.operation_id, u.task_id, u.data
      from jsonb_to_recordset((select j->'events' from p))
        as u(seq int, type text, at timestamptz, operation_id text, task_id text, data jsonb)
      where exists (select 1 from f)
      order by u.seq
      returning id, seq
    ),
    c as (
      insert into checkpoints (run_id, number, at, event_seq, completed_operations, completed_tasks)
      select ${runId}, u.number, u.at, u.event_seq, u.completed_operations, u.completed_tasks
      from jsonb_to_recordset((select j->'checkpoints' from p))
        as u(number int, at timestamptz, event_seq int, completed_operations jsonb,
             completed_tasks jsonb)
      where exists (select 1 from f)
      returning 1
    )
    select (select count(*)::int from f) as n,
      (select coalesce(json_agg(json_build_array(e.seq, e.id)), '[]'::json) from e) as ids`;
}

/** The commit statement's one row, whatever the driver's result shape. */
function commitRow(result: unknown): { n: number; ids: Map<number, number> } {
  const rows = Array.isArray(result) ? result : ((result as { rows?: unknown[] }).rows ?? []);
  const row = (rows[0] ?? {}) as { n?: unknown; ids?: unknown };
  const pairs = (typeof row.ids === 'string' ? JSON.parse(row.ids) : (row.ids ?? [])) as Array<
    [number, number]
  >;
  return { n: Number(row.n ?? 0), ids: new Map(pairs.map(([seq, id]) => [seq, Number(id)])) };
}

function toRun(r: t.RunRow): Run {
  return { ...toRunInfo(r), plan: decodePlan(r.plan), workflow: r.workflow };
}

function toRunInfo(r: Omit<t.RunRow, 'plan' | 'workflow'>): RunInfo {
  return {
    id: r.id,
    name: r.name,
    status: r.status as RunStatus,
    labels: r.labels,
    idempotencyKey: r.idempotency_key,
    error: r.error,
    checkpoint: r.checkpoint,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

function toOperation(r: t.OperationRow): OperationState {
  return {
    id: r.id,
    position: r.position,
    level: r.level,
    status: r.status as OperationStatus,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

function toTask(r: t.TaskRow): TaskState {
  return {
    id: r.id,
    operationId: r.operation_id,
    position: r.position,
    queue: r.queue,
    status: r.status as TaskStatus,
    attempts: r.attempts,
    attemptBase: r.attempt_base,
    notBefore: r.not_before,
    finishedSeq: r.finished_seq,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    result: r.result as TaskResult | null,
    failure: r.failure as TaskFailure | null,
    compensated: r.compensated,
  };
}

function toCheckpoint(r: t.CheckpointRow): Checkpoint {
  return {
    number: r.number,
    at: r.at,
    eventSeq: r.event_seq,
    completedOperations: r.completed_operations,
    completedTasks: r.completed_tasks,
  };
}

function toEvent(r: t.EventRow): RunEvent {
  return {
    id: r.id,
    runId: r.run_id,
    seq: r.seq,
    type: r.type as EventType,
    at: r.at,
    operationId: r.operation_id,
    taskId: r.task_id,
    data: r.data as RunEvent['data'],
  };
}

function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, string];
    const createdAt = new Date(at);
    if (typeof id !== 'string' || Number.isNaN(createdAt.getTime())) throw new Error('bad cursor');
    return { createdAt, id };
  } catch (e: unknown) {
    throw new StoreError('listRuns', e, 'the cursor is not one this server returned');
  }
}
