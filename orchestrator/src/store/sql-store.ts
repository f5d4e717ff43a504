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
import { and, asc, desc, eq, gt, lt, or, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { StoreError, LeaseLostError } from './errors.ts';
import type { Attempt, NewRun, RunFilter, RunPage, Store } from './store.ts';
import * as t from './tables.ts';
import type {
  Batch,
  Fence,
  RunSnapshot,
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
import type { Plan } from '../plan/types.ts';

/** Any drizzle PostgreSQL database, whatever its driver. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPgDatabase = PgDatabase<PgQueryResultHKT, any, any>;

/** What a driver supplies: the database and how to migrate and close it. */
export interface Driver {
  readonly name: 'pglite' | 'postgres';
  readonly db: AnyPgDatabase;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

/** Creates a store over a driver. */
export function createSqlStore(driver: Driver): Store {
  const { db } = driver;

  const wrap = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e: unknown) {
      if (e instanceof LeaseLostError || e instanceof StoreError) throw e;
      throw new StoreError(operation, e);
    }
  };

  const store: Store = {
    driver: driver.name,

    migrate: () => wrap('migrate', () => driver.migrate()),

    ping: () =>
      wrap('ping', async () => {
        await db.execute(sql`select 1`);
      }),

    close: () => driver.close(),

    createRun: (input: NewRun) =>
      wrap('createRun', async () =>
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
              plan: input.plan,
              labels: { ...input.labels },
              idempotency_key: input.idempotencyKey ?? null,
            })
            .returning();
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
          return { run: toRun(row!), created: true };
        }),
      ),

    getRun: (id) =>
      wrap('getRun', async () => {
        const [row] = await db.select().from(t.runs).where(eq(t.runs.id, id));
        return row ? toRun(row) : undefined;
      }),

    listRuns: (filter: RunFilter = {}) =>
      wrap('listRuns', async () => {
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
        const rows = await db
          .select()
          .from(t.runs)
          .where(conditions.length ? and(...conditions) : undefined)
          .orderBy(desc(t.runs.created_at), desc(t.runs.id))
          .limit(limit + 1);
        const items = rows.slice(0, limit).map(toRun);
        const last = items[items.length - 1];
        return {
          items,
          nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null,
        } satisfies RunPage;
      }),

    loadRun: (id) =>
      wrap('loadRun', async () => {
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

    commit: (runId: string, batch: Batch, fence?: Fence) =>
      wrap('commit', () =>
        db.transaction(async (tx) => {
          // The fence first: it locks the run row, so a stale driver cannot interleave with us.
          const runSet = runWriteSet(batch);
          if (fence) {
            const fenced = await tx
              .update(t.runs)
              .set(runSet)
              .where(
                and(
                  eq(t.runs.id, runId),
                  eq(t.runs.lease_owner, fence.owner),
                  eq(t.runs.lease_token, fence.token),
                ),
              )
              .returning({ id: t.runs.id });
            if (fenced.length === 0) throw new LeaseLostError(runId, fence.owner);
          } else if (batch.run) {
            await tx.update(t.runs).set(runSet).where(eq(t.runs.id, runId));
          }
          if (batch.operations?.length) {
            const rows = batch.operations.map((o) => ({
              id: o.id,
              status: o.status,
              started_at: o.startedAt?.toISOString() ?? null,
              finished_at: o.finishedAt?.toISOString() ?? null,
            }));
            await tx.execute(sql`
              update operations o set status = u.status, started_at = u.started_at,
                finished_at = u.finished_at
              from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
                as u(id text, status text, started_at timestamptz, finished_at timestamptz)
              where o.run_id = ${runId} and o.id = u.id`);
          }
          if (batch.tasks?.length) {
            const rows = batch.tasks.map((k) => ({
              id: k.id,
              status: k.status,
              attempts: k.attempts,
              attempt_base: k.attemptBase,
              not_before: k.notBefore?.toISOString() ?? null,
              finished_seq: k.finishedSeq,
              started_at: k.startedAt?.toISOString() ?? null,
              finished_at: k.finishedAt?.toISOString() ?? null,
              result: k.result,
              failure: k.failure,
              compensated: k.compensated,
            }));
            await tx.execute(sql`
              update tasks k set status = u.status, attempts = u.attempts, attempt_base = u.attempt_base,
                not_before = u.not_before, finished_seq = u.finished_seq,
                started_at = u.started_at, finished_at = u.finished_at, result = u.result,
                failure = u.failure, compensated = u.compensated
              from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
                as u(id text, status text, attempts int, attempt_base int, not_before timestamptz,
                     finished_seq bigint, started_at timestamptz, finished_at timestamptz,
                     result jsonb, failure jsonb, compensated boolean)
              where k.run_id = ${runId} and k.id = u.id`);
          }
          if (batch.attempts?.length) {
            const rows = batch.attempts.map((a) => ({
              task_id: a.taskId,
              attempt: a.attempt,
              status: a.status,
              started_at: a.startedAt.toISOString(),
              finished_at: a.finishedAt?.toISOString() ?? null,
              failure: a.failure,
            }));
            await tx.execute(sql`
              insert into attempts (run_id, task_id, attempt, status, started_at, finished_at, failure)
              select ${runId}, a.task_id, a.attempt, a.status, a.started_at, a.finished_at, a.failure
              from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
                as a(task_id text, attempt int, status text, started_at timestamptz,
                     finished_at timestamptz, failure jsonb)
              on conflict (run_id, task_id, attempt) do update set status = excluded.status,
                finished_at = excluded.finished_at, failure = excluded.failure`);
          }
          if (batch.events?.length) {
            const rows = batch.events.map((e) => ({
              seq: e.seq,
              type: e.type,
              at: e.at.toISOString(),
              operation_id: e.operationId,
              task_id: e.taskId,
              data: e.data,
            }));
            await tx.execute(sql`
              insert into events (run_id, seq, type, at, operation_id, task_id, data)
              select ${runId}, e.seq, e.type, e.at, e.operation_id, e.task_id, e.data
              from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
                as e(seq int, type text, at timestamptz, operation_id text, task_id text, data jsonb)
              order by e.seq`);
          }
          if (batch.checkpoint) {
            const c = batch.checkpoint;
            await tx.insert(t.checkpoints).values({
              run_id: runId,
              number: c.number,
              at: c.at,
              event_seq: c.eventSeq,
              completed_operations: [...c.completedOperations],
              completed_tasks: [...c.completedTasks],
            });
          }
        }),
      ),

    events: (runId, afterSeq = 0, limit = 10_000) =>
      wrap('events', async () => {
        const rows = await db
          .select()
          .from(t.events)
          .where(and(eq(t.events.run_id, runId), gt(t.events.seq, afterSeq)))
          .orderBy(asc(t.events.seq))
          .limit(limit);
        return rows.map(toEvent);
      }),

    allEvents: (afterId = 0, limit = 10_000) =>
      wrap('allEvents', async () => {
        const rows = await db
          .select()
          .from(t.events)
          .where(gt(t.events.id, afterId))
          .orderBy(asc(t.events.id))
          .limit(limit);
        return rows.map(toEvent);
      }),

    attempts: (runId, taskId) =>
      wrap('attempts', async () => {
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
      wrap('acquireLease', async () => {
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
      wrap('renewLease', async () => {
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
      wrap('releaseLease', async () => {
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

function runWriteSet(batch: Batch): Partial<typeof t.runs.$inferInsert> {
  const set: Partial<typeof t.runs.$inferInsert> = { updated_at: new Date() };
  const w = batch.run;
  if (!w) return set;
  if (w.status !== undefined) set.status = w.status;
  if (w.error !== undefined) set.error = w.error;
  if (w.startedAt !== undefined) set.started_at = w.startedAt;
  if (w.finishedAt !== undefined) set.finished_at = w.finishedAt;
  if (w.checkpoint !== undefined) set.checkpoint = w.checkpoint;
  return set;
}

function toRun(r: t.RunRow): Run {
  return {
    id: r.id,
    name: r.name,
    status: r.status as RunStatus,
    plan: r.plan as Plan,
    workflow: r.workflow,
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
