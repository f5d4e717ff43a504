/**
 * The store's tables, in drizzle's pg-core: one schema for PGlite and PostgreSQL alike.
 *
 * Row types (`typeof runs.$inferSelect`) stay here; the engine works with domain types from
 * `store.ts`. Migrations in `migrations/` are generated from this file by `npm run db:generate`.
 *
 * @module
 */
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** One execution of a workflow. */
export const runs = pgTable(
  'runs',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    status: text('status').notNull(),
    workflow: jsonb('workflow').notNull(),
    plan: jsonb('plan').notNull(),
    labels: jsonb('labels').$type<Record<string, string>>().notNull(),
    idempotency_key: text('idempotency_key'),
    error: text('error'),
    /** Completed-operation count at the last checkpoint. */
    checkpoint: integer('checkpoint').notNull().default(0),
    created_at: ts('created_at').notNull().defaultNow(),
    updated_at: ts('updated_at').notNull().defaultNow(),
    started_at: ts('started_at'),
    finished_at: ts('finished_at'),
    /** The replica driving the run, until `lease_expires_at`; `lease_token` fences stale drivers. */
    lease_owner: text('lease_owner'),
    lease_token: bigint('lease_token', { mode: 'number' }).notNull().default(0),
    lease_expires_at: ts('lease_expires_at'),
  },
  (t) => [
    uniqueIndex('runs_idempotency_key').on(t.idempotency_key),
    index('runs_status_created').on(t.status, t.created_at),
  ],
);

/** An operation of a run. */
export const operations = pgTable(
  'operations',
  {
    run_id: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    id: text('id').notNull(),
    position: integer('position').notNull(),
    level: integer('level').notNull(),
    status: text('status').notNull(),
    started_at: ts('started_at'),
    finished_at: ts('finished_at'),
  },
  (t) => [primaryKey({ columns: [t.run_id, t.id] })],
);

/** A task of a run: its current state. Attempts keep the history. */
export const tasks = pgTable(
  'tasks',
  {
    run_id: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    id: text('id').notNull(),
    operation_id: text('operation_id').notNull(),
    position: integer('position').notNull(),
    queue: text('queue').notNull(),
    status: text('status').notNull(),
    /** The number of attempts started. */
    attempts: integer('attempts').notNull().default(0),
    /** Attempts made before the last retry of the run: the retry budget starts there. */
    attempt_base: integer('attempt_base').notNull().default(0),
    /** A retry waits until then. */
    not_before: ts('not_before'),
    /** Order of completion: rollback runs in reverse of it. */
    finished_seq: bigint('finished_seq', { mode: 'number' }),
    started_at: ts('started_at'),
    finished_at: ts('finished_at'),
    /** Step results (outputs, rollback data) of the attempt that finished. */
    result: jsonb('result'),
    failure: jsonb('failure'),
    /** Whether the task's effects were compensated by a rollback. */
    compensated: boolean('compensated').notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.run_id, t.id] }),
    index('tasks_queue_status').on(t.queue, t.status),
  ],
);

/** One attempt at a task: written before the side effect (intent) and after it (result). */
export const attempts = pgTable(
  'attempts',
  {
    run_id: text('run_id').notNull(),
    task_id: text('task_id').notNull(),
    attempt: integer('attempt').notNull(),
    status: text('status').notNull(),
    started_at: ts('started_at').notNull(),
    finished_at: ts('finished_at'),
    failure: jsonb('failure'),
  },
  (t) => [
    primaryKey({ columns: [t.run_id, t.task_id, t.attempt] }),
    index('attempts_run').on(t.run_id),
  ],
);

/** The append-only event log: the audit trail and the source of every progress stream. */
export const events = pgTable(
  'events',
  {
    /** Global order across runs, for subscribers to every run. */
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    run_id: text('run_id').notNull(),
    /** Order within the run, from 1, without gaps. */
    seq: integer('seq').notNull(),
    type: text('type').notNull(),
    at: ts('at').notNull(),
    operation_id: text('operation_id'),
    task_id: text('task_id'),
    data: jsonb('data'),
  },
  (t) => [uniqueIndex('events_run_seq').on(t.run_id, t.seq)],
);

/** A checkpoint: the tasks finished when it was taken. `rollback --to-checkpoint N` keeps them. */
export const checkpoints = pgTable(
  'checkpoints',
  {
    run_id: text('run_id').notNull(),
    number: integer('number').notNull(),
    at: ts('at').notNull(),
    event_seq: integer('event_seq').notNull(),
    completed_operations: jsonb('completed_operations').$type<string[]>().notNull(),
    completed_tasks: jsonb('completed_tasks').$type<string[]>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.run_id, t.number] })],
);

/** Servers Muster knows of (created by providers or listed in inventories). */
export const servers = pgTable('servers', {
  name: text('name').primaryKey(),
  provider: text('provider').notNull(),
  status: text('status').notNull(),
  address: text('address'),
  labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
  created_at: ts('created_at').notNull().defaultNow(),
  updated_at: ts('updated_at').notNull().defaultNow(),
});

/** Agents connected (or once connected) for a server's queue. */
export const agents = pgTable(
  'agents',
  {
    id: text('id').primaryKey(),
    server: text('server').notNull(),
    status: text('status').notNull(),
    version: text('version'),
    last_heartbeat_at: ts('last_heartbeat_at').notNull(),
    connected_at: ts('connected_at').notNull(),
    /**
     * Order of registration among the server's agents: an agent whose epoch is below the server's
     * newest was replaced, and is refused if it comes back.
     */
    epoch: bigint('epoch', { mode: 'number' }).notNull().default(0),
  },
  (t) => [index('agents_server').on(t.server)],
);

/**
 * The lease on a task's current attempt (or compensation) held by an agent. `token` grows by one
 * at every grant and is never reused: reports carrying an older token are refused (fencing).
 */
export const taskLeases = pgTable(
  'task_leases',
  {
    run_id: text('run_id').notNull(),
    task_id: text('task_id').notNull(),
    token: bigint('token', { mode: 'number' }).notNull(),
    attempt: integer('attempt').notNull(),
    /** `execute` or `compensate`. */
    mode: text('mode').notNull(),
    agent_id: text('agent_id').notNull(),
    server: text('server').notNull(),
    /** `granted` until the agent's report is accepted (`reported`) or the lease is `revoked`. */
    state: text('state').notNull(),
    granted_at: ts('granted_at').notNull().defaultNow(),
    finished_at: ts('finished_at'),
  },
  (t) => [
    primaryKey({ columns: [t.run_id, t.task_id] }),
    index('task_leases_agent_state').on(t.agent_id, t.state),
  ],
);

/**
 * Orchestrator replicas sharing one PostgreSQL: each heartbeats its row while it lives. A replica
 * whose heartbeat is older than the lease timeout is dead: its runs and claims are taken over.
 */
export const replicas = pgTable('replicas', {
  id: text('id').primaryKey(),
  /** Where its API answers, if it said. */
  url: text('url'),
  host: text('host').notNull(),
  pid: integer('pid').notNull(),
  version: text('version').notNull(),
  started_at: ts('started_at').notNull().defaultNow(),
  heartbeat_at: ts('heartbeat_at').notNull().defaultNow(),
  /** Set when it stopped gracefully. */
  stopped_at: ts('stopped_at'),
});

/**
 * A control action (pause, retry, …) asked of a run driven by another replica: the replica
 * holding the run's lease carries it out and writes the outcome.
 */
export const runCommands = pgTable(
  'run_commands',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    run_id: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    action: text('action').notNull(),
    options: jsonb('options').notNull(),
    requested_by: text('requested_by').notNull(),
    /** `pending` until the driving replica sets `done` or `failed`. */
    state: text('state').notNull(),
    /** `{status}` when done, `{code, message}` when failed. */
    outcome: jsonb('outcome'),
    created_at: ts('created_at').notNull().defaultNow(),
    done_at: ts('done_at'),
  },
  (t) => [index('run_commands_run_state').on(t.run_id, t.state)],
);

/**
 * The shared task queue of agents: a driver enqueues an attempt for a server, whichever replica
 * that server's agent is connected to claims it (`FOR UPDATE SKIP LOCKED`), and relays what the
 * agent says back through `dispatch_messages`. The assignment is stored without secret values.
 */
export const dispatches = pgTable(
  'dispatches',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    run_id: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    task_id: text('task_id').notNull(),
    attempt: integer('attempt').notNull(),
    /** `execute` or `compensate`. */
    mode: text('mode').notNull(),
    server: text('server').notNull(),
    assignment: jsonb('assignment').notNull(),
    /** `queued`, `claimed` (by `claimed_by`, sent under `token`), or `done`. */
    state: text('state').notNull(),
    /** The replica driving the run, which waits for the outcome. */
    owner: text('owner').notNull(),
    claimed_by: text('claimed_by'),
    /** The agent lease's fencing token, once granted. */
    token: bigint('token', { mode: 'number' }),
    /** Set by the owner to stop the attempt (terminate, timeout). */
    cancel_reason: text('cancel_reason'),
    created_at: ts('created_at').notNull().defaultNow(),
    claimed_at: ts('claimed_at'),
    done_at: ts('done_at'),
  },
  (t) => [
    uniqueIndex('dispatches_attempt').on(t.run_id, t.task_id, t.attempt, t.mode),
    index('dispatches_server_state').on(t.server, t.state, t.id),
    index('dispatches_claimed_by').on(t.claimed_by, t.state),
  ],
);

/**
 * What an agent said about a dispatch (output lines, finished steps, the report), relayed by the
 * replica it is connected to, for the replica driving the run. `seq` is the agent's own numbering
 * under a lease `token`, so a message sent again after a reconnect is stored once.
 */
export const dispatchMessages = pgTable(
  'dispatch_messages',
  {
    dispatch_id: bigint('dispatch_id', { mode: 'number' })
      .notNull()
      .references(() => dispatches.id, { onDelete: 'cascade' }),
    token: bigint('token', { mode: 'number' }).notNull(),
    seq: integer('seq').notNull(),
    /** `output`, `step` or `report`. */
    kind: text('kind').notNull(),
    body: jsonb('body').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dispatch_id, t.token, t.seq] })],
);

export type RunRow = typeof runs.$inferSelect;
export type OperationRow = typeof operations.$inferSelect;
export type TaskRow = typeof tasks.$inferSelect;
export type AttemptRow = typeof attempts.$inferSelect;
export type EventRow = typeof events.$inferSelect;
export type CheckpointRow = typeof checkpoints.$inferSelect;
export type AgentRow = typeof agents.$inferSelect;
export type TaskLeaseRow = typeof taskLeases.$inferSelect;
export type ReplicaRow = typeof replicas.$inferSelect;
export type RunCommandRow = typeof runCommands.$inferSelect;
export type DispatchRow = typeof dispatches.$inferSelect;
export type DispatchMessageRow = typeof dispatchMessages.$inferSelect;
