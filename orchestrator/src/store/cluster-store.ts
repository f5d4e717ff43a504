/**
 * What replicas sharing one PostgreSQL keep in it: their heartbeats, the leases of the runs they
 * drive, control commands for a run driven elsewhere, the event heads other replicas follow, and
 * the shared queue of agent tasks. Both drivers share this code; only PostgreSQL has replicas.
 *
 * Every claim is a single `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)`: replicas
 * claiming at once take disjoint rows and never wait on each other.
 *
 * @module
 */
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { RunAction } from '../engine/types.ts';
import { storeOperation } from './errors.ts';
import { rowsOf } from './agent-store.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyPgDatabase = PgDatabase<PgQueryResultHKT, any, any>;

/** A replica as it registers. */
export interface ReplicaInfo {
  readonly id: string;
  /** Where its API answers, if known. */
  readonly url?: string;
  readonly host: string;
  readonly pid: number;
  readonly version: string;
}

/** A replica as stored. */
export interface ReplicaRecord extends ReplicaInfo {
  readonly startedAt: Date;
  readonly heartbeatAt: Date;
  /** Whether its heartbeat is within the lease timeout. */
  readonly live: boolean;
}

/** A run lease a replica holds. */
export interface HeldRun {
  readonly runId: string;
  readonly token: number;
}

/** Who drives a run now. */
export interface RunLeaseInfo {
  readonly status: string;
  readonly owner: string | null;
  readonly token: number;
  /** Whether the lease has run out (or was never taken). */
  readonly free: boolean;
}

/** A control command for the replica driving a run. */
export interface RunCommand {
  readonly id: number;
  readonly runId: string;
  readonly action: RunAction;
  readonly options: { readonly operation?: string; readonly toCheckpoint?: number };
  readonly requestedBy: string;
}

/** How a command ended: the run's status, or the error the driving replica met. */
export type CommandOutcome =
  | { readonly state: 'done'; readonly status: string }
  | { readonly state: 'failed'; readonly code: string; readonly message: string };

/** Where a command stands. */
export type CommandState = { readonly state: 'pending' | 'running' | 'expired' } | CommandOutcome;

/** The newest event of a run, for replicas following it. */
export interface EventHead {
  readonly runId: string;
  /** The first seq after `afterId`. */
  readonly firstSeq: number;
  readonly seq: number;
  readonly maxId: number;
}

/** A task attempt in the shared agent queue. */
export interface DispatchRecord {
  readonly id: number;
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly mode: 'execute' | 'compensate';
  readonly server: string;
  readonly assignment: unknown;
  readonly state: 'queued' | 'claimed' | 'done';
  readonly owner: string;
  readonly claimedBy: string | null;
  readonly token: number | null;
  readonly cancelReason: string | null;
}

/** A dispatch to enqueue. */
export interface NewDispatch {
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly mode: 'execute' | 'compensate';
  readonly server: string;
  /** Without secret values. */
  readonly assignment: unknown;
  readonly owner: string;
}

/** What an agent said about a dispatch, relayed. */
export interface DispatchMessage {
  readonly dispatchId: number;
  readonly token: number;
  readonly seq: number;
  readonly kind: 'output' | 'step' | 'report';
  readonly body: unknown;
}

/** Where a reader of a dispatch's messages is. */
export interface DispatchPosition {
  readonly dispatchId: number;
  readonly token: number;
  readonly seq: number;
}

/** The seq a hub-made report takes: after anything the agent could have sent under the token. */
export const HUB_REPORT_SEQ = 2_147_483_647;

/** Replicas, run leases, commands, event heads and the shared agent queue. */
export interface ClusterStore {
  /** Registers (or re-registers) a replica with a fresh heartbeat. */
  registerReplica(replica: ReplicaInfo): Promise<void>;
  /**
   * Heartbeats the replica and extends the leases of every run it drives by `ttlMs`.
   *
   * @returns the run leases it still holds
   */
  heartbeat(replicaId: string, ttlMs: number): Promise<HeldRun[]>;
  /** Marks the replica stopped and frees the leases of its runs for the others at once. */
  stopReplica(replicaId: string): Promise<void>;
  /** Replicas, newest first; `live` within `ttlMs`. */
  listReplicas(ttlMs: number): Promise<ReplicaRecord[]>;
  /** Live replicas, and unfinished runs with the number this replica drives. */
  workload(
    replicaId: string,
    ttlMs: number,
  ): Promise<{ replicas: number; runs: number; mine: number }>;
  /**
   * Leases up to `limit` unfinished runs that have no live driver (never leased, released, or
   * expired), oldest first, for `ttlMs`.
   */
  claimRuns(owner: string, ttlMs: number, limit: number): Promise<HeldRun[]>;
  /** Who drives a run; `undefined` for an unknown run. */
  runLease(runId: string): Promise<RunLeaseInfo | undefined>;

  /** Queues a command for the run's driver; returns its id. */
  addCommand(command: Omit<RunCommand, 'id'>): Promise<number>;
  /** Takes the pending commands of runs this replica holds (of `runIds` only, if given). */
  takeCommands(owner: string, runIds?: readonly string[]): Promise<RunCommand[]>;
  finishCommand(id: number, outcome: CommandOutcome): Promise<void>;
  commandState(id: number): Promise<CommandState | undefined>;
  /** Gives up a command nobody took: true if it was still pending (it will never run). */
  expireCommand(id: number): Promise<boolean>;

  /** The first and newest event of each run with events after the global id `afterId`. */
  eventHeads(afterId: number): Promise<EventHead[]>;
  /** The largest global event id so far. */
  maxEventId(): Promise<number>;
  /** Sends a notification (`NOTIFY`); payloads stay under 8000 bytes. */
  notify(channel: string, payload: string): Promise<void>;

  /**
   * Queues an attempt for its server's agent, or — when this attempt is queued already (a driver
   * taking a run over) — makes `owner` the one waiting for it.
   */
  enqueueDispatch(dispatch: NewDispatch): Promise<DispatchRecord & { readonly created: boolean }>;
  /** The attempt's dispatch, if it was queued. */
  findDispatch(
    runId: string,
    taskId: string,
    attempt: number,
    mode: 'execute' | 'compensate',
  ): Promise<DispatchRecord | undefined>;
  /** Claims up to `limit` queued dispatches of a server, oldest first. */
  claimDispatches(server: string, replica: string, limit: number): Promise<DispatchRecord[]>;
  /** Records the lease token a claimed dispatch was sent under. */
  setDispatchToken(id: number, replica: string, token: number): Promise<void>;
  /** Puts a claimed dispatch back in the queue (its agent left before taking it). */
  releaseDispatch(id: number, replica: string): Promise<void>;
  /**
   * Takes over the relaying of a claimed dispatch sent under `token` (its agent reconnected to
   * this replica).
   */
  adoptDispatch(
    runId: string,
    taskId: string,
    token: number,
    replica: string,
  ): Promise<DispatchRecord | undefined>;
  /** Takes a dispatch out of the queue if nobody claimed it yet; true if it was. */
  withdrawDispatch(id: number): Promise<boolean>;
  /** Asks whoever relays a claimed dispatch to stop it. */
  requestCancel(id: number, reason: string): Promise<void>;
  /** Claimed dispatches of this replica with a cancel request. */
  cancelRequests(replica: string): Promise<DispatchRecord[]>;
  /** Stores relayed messages; one sent twice is stored once. */
  addMessages(messages: readonly DispatchMessage[]): Promise<void>;
  /** Stores the report and marks the dispatch done, if `replica` still relays it. */
  finishDispatch(message: DispatchMessage, replica: string): Promise<void>;
  /** Messages of many dispatches, each after its (`token`, `seq`), in order per dispatch. */
  messages(positions: readonly DispatchPosition[]): Promise<DispatchMessage[]>;
  /** Forgets a dispatch once its outcome is in the owner's hands. */
  deleteDispatch(id: number): Promise<void>;
  /**
   * Claims for `replica` the dispatches claimed by replicas silent for `silentMs` (dead): they are
   * failed over or queued again by the caller.
   */
  claimOrphans(replica: string, silentMs: number, limit: number): Promise<DispatchRecord[]>;
  /** Dispatches this replica claimed before `olderThanMs` ago and still relays. */
  listClaimed(replica: string, olderThanMs: number): Promise<DispatchRecord[]>;
  /**
   * Fails a claimed dispatch over when `replica` still relays it: its agent lease is revoked and
   * `report` is stored as its outcome. False when another replica took it over.
   */
  failDispatch(id: number, replica: string, report: unknown): Promise<boolean>;
  /** Forgets dispatches whose outcome the run has recorded, or whose run ended. */
  pruneDispatches(): Promise<number>;
}

/** Creates the cluster store over a drizzle database. */
export function createSqlClusterStore(db: AnyPgDatabase): ClusterStore {
  const rows = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await db.execute(query));
  const interval = (ms: number) => `${Math.max(0, Math.round(ms))} milliseconds`;
  const unfinished = sql`('pending', 'running', 'paused', 'cancelling', 'rolling_back')`;

  return {
    registerReplica: (r) =>
      storeOperation('register a replica', async () => {
        await db.execute(sql`
          insert into replicas (id, url, host, pid, version)
          values (${r.id}, ${r.url ?? null}, ${r.host}, ${r.pid}, ${r.version})
          on conflict (id) do update set url = excluded.url, host = excluded.host,
            pid = excluded.pid, version = excluded.version, heartbeat_at = now(), stopped_at = null`);
      }),

    heartbeat: (replicaId, ttlMs) =>
      storeOperation('heartbeat', async () => {
        const held = await rows<{ id: string; lease_token: string | number }>(sql`
          with beat as (
            update replicas set heartbeat_at = now() where id = ${replicaId} returning id
          )
          update runs set lease_expires_at = now() + ${interval(ttlMs)}::interval
          where lease_owner = ${replicaId} and lease_expires_at is not null
          returning id, lease_token`);
        return held.map((r) => ({ runId: r.id, token: Number(r.lease_token) }));
      }),

    stopReplica: (replicaId) =>
      storeOperation('stop a replica', async () => {
        await db.execute(sql`
          with gone as (update replicas set stopped_at = now() where id = ${replicaId} returning id)
          update runs set lease_owner = null, lease_expires_at = null
          where lease_owner = ${replicaId}`);
      }),

    listReplicas: (ttlMs) =>
      storeOperation('list replicas', async () => {
        const list = await rows<{
          id: string;
          url: string | null;
          host: string;
          pid: number;
          version: string;
          started_at: string | Date;
          heartbeat_at: string | Date;
          live: boolean;
        }>(sql`
          select *, (stopped_at is null and heartbeat_at > now() - ${interval(ttlMs)}::interval) as live
          from replicas order by started_at desc`);
        return list.map((r) => ({
          id: r.id,
          ...(r.url ? { url: r.url } : {}),
          host: r.host,
          pid: Number(r.pid),
          version: r.version,
          startedAt: new Date(r.started_at),
          heartbeatAt: new Date(r.heartbeat_at),
          live: Boolean(r.live),
        }));
      }),

    workload: (replicaId, ttlMs) =>
      storeOperation('count the work to share', async () => {
        const [row] = await rows<{ replicas: number; runs: number; mine: number }>(sql`
          select
            (select count(*)::int from replicas
              where stopped_at is null and heartbeat_at > now() - ${interval(ttlMs)}::interval)
              as replicas,
            (select count(*)::int from runs where status in ${unfinished}) as runs,
            (select count(*)::int from runs
              where status in ${unfinished} and lease_owner = ${replicaId}
                and lease_expires_at > now()) as mine`);
        return {
          replicas: Math.max(1, Number(row?.replicas ?? 1)),
          runs: Number(row?.runs ?? 0),
          mine: Number(row?.mine ?? 0),
        };
      }),

    claimRuns: (owner, ttlMs, limit) =>
      storeOperation('claim runs', async () => {
        if (limit <= 0) return [];
        const claimed = await rows<{ id: string; lease_token: string | number }>(sql`
          update runs set lease_owner = ${owner}, lease_token = lease_token + 1,
            lease_expires_at = now() + ${interval(ttlMs)}::interval
          where id in (
            select id from runs
            where status in ${unfinished}
              and (lease_owner is null or lease_expires_at is null or lease_expires_at < now())
            order by created_at
            limit ${limit}
            for update skip locked)
          returning id, lease_token`);
        return claimed.map((r) => ({ runId: r.id, token: Number(r.lease_token) }));
      }),

    runLease: (runId) =>
      storeOperation('read a run lease', async () => {
        const [row] = await rows<{
          status: string;
          lease_owner: string | null;
          lease_token: string | number;
          free: boolean;
        }>(sql`
          select status, lease_owner, lease_token,
            (lease_owner is null or lease_expires_at is null or lease_expires_at < now()) as free
          from runs where id = ${runId}`);
        return row
          ? {
              status: row.status,
              owner: row.lease_owner,
              token: Number(row.lease_token),
              free: Boolean(row.free),
            }
          : undefined;
      }),

    addCommand: (c) =>
      storeOperation('queue a command', async () => {
        const [row] = await rows<{ id: string | number }>(sql`
          insert into run_commands (run_id, action, options, requested_by, state)
          values (${c.runId}, ${c.action}, ${JSON.stringify(c.options)}::jsonb, ${c.requestedBy}, 'pending')
          returning id`);
        return Number(row!.id);
      }),

    takeCommands: (owner, runIds) =>
      storeOperation('take commands', async () => {
        const only = runIds
          ? sql`and c.run_id in (select jsonb_array_elements_text(${JSON.stringify(runIds)}::jsonb))`
          : sql``;
        const taken = await rows<{
          id: string | number;
          run_id: string;
          action: RunAction;
          options: RunCommand['options'];
          requested_by: string;
        }>(sql`
          update run_commands set state = 'running'
          where id in (
            select c.id from run_commands c join runs r on r.id = c.run_id
            where c.state = 'pending' and r.lease_owner = ${owner} ${only}
            order by c.id
            for update of c skip locked)
          returning id, run_id, action, options, requested_by`);
        return taken
          .map((r) => ({
            id: Number(r.id),
            runId: r.run_id,
            action: r.action,
            options: r.options ?? {},
            requestedBy: r.requested_by,
          }))
          .sort((a, b) => a.id - b.id);
      }),

    finishCommand: (id, outcome) =>
      storeOperation('finish a command', async () => {
        const { state, ...rest } = outcome;
        await db.execute(sql`
          update run_commands set state = ${state}, outcome = ${JSON.stringify(rest)}::jsonb,
            done_at = now()
          where id = ${id}`);
      }),

    commandState: (id) =>
      storeOperation('read a command', async () => {
        const [row] = await rows<{
          state: string;
          outcome: { status?: string; code?: string; message?: string } | null;
        }>(sql`select state, outcome from run_commands where id = ${id}`);
        if (!row) return undefined;
        if (row.state === 'done') return { state: 'done', status: row.outcome?.status ?? '' };
        if (row.state === 'failed') {
          return {
            state: 'failed',
            code: row.outcome?.code ?? 'ORC1008',
            message: row.outcome?.message ?? 'the command failed',
          };
        }
        return { state: row.state as 'pending' | 'running' | 'expired' };
      }),

    expireCommand: (id) =>
      storeOperation('expire a command', async () => {
        const done = await rows<{ id: unknown }>(sql`
          update run_commands set state = 'expired', done_at = now()
          where id = ${id} and state = 'pending' returning id`);
        return done.length > 0;
      }),

    eventHeads: (afterId) =>
      storeOperation('read event heads', async () => {
        const heads = await rows<{
          run_id: string;
          first_seq: number;
          seq: number;
          max_id: string | number;
        }>(sql`
          select run_id, min(seq)::int as first_seq, max(seq)::int as seq, max(id) as max_id
          from events where id > ${afterId} group by run_id`);
        return heads.map((h) => ({
          runId: h.run_id,
          firstSeq: Number(h.first_seq),
          seq: Number(h.seq),
          maxId: Number(h.max_id),
        }));
      }),

    maxEventId: () =>
      storeOperation('read the last event id', async () => {
        const [row] = await rows<{ id: string | number | null }>(
          sql`select max(id) as id from events`,
        );
        return Number(row?.id ?? 0);
      }),

    notify: (channel, payload) =>
      storeOperation('notify', async () => {
        await db.execute(sql`select pg_notify(${channel}, ${payload})`);
      }),

    enqueueDispatch: (d) =>
      storeOperation('queue a task for an agent', async () => {
        const [row] = await rows<DispatchRow & { created: boolean }>(sql`
          insert into dispatches (run_id, task_id, attempt, mode, server, assignment, state, owner)
          values (${d.runId}, ${d.taskId}, ${d.attempt}, ${d.mode}, ${d.server},
            ${JSON.stringify(d.assignment)}::jsonb, 'queued', ${d.owner})
          on conflict (run_id, task_id, attempt, mode) do update set owner = excluded.owner
          returning ${DISPATCH_COLUMNS}, (xmax = 0) as created`);
        return { ...toDispatch(row!), created: Boolean(row!.created) };
      }),

    findDispatch: (runId, taskId, attempt, mode) =>
      storeOperation('find a dispatch', async () => {
        const [row] = await rows<DispatchRow>(sql`
          select ${DISPATCH_COLUMNS} from dispatches
          where run_id = ${runId} and task_id = ${taskId} and attempt = ${attempt} and mode = ${mode}`);
        return row ? toDispatch(row) : undefined;
      }),

    claimDispatches: (server, replica, limit) =>
      storeOperation('claim tasks for an agent', async () => {
        if (limit <= 0) return [];
        const claimed = await rows<DispatchRow>(sql`
          update dispatches set state = 'claimed', claimed_by = ${replica}, claimed_at = now()
          where id in (
            select id from dispatches
            where server = ${server} and state = 'queued'
            order by id
            limit ${limit}
            for update skip locked)
          returning ${DISPATCH_COLUMNS}`);
        return claimed.map(toDispatch).sort((a, b) => a.id - b.id);
      }),

    setDispatchToken: (id, replica, token) =>
      storeOperation('record a dispatch lease', async () => {
        await db.execute(sql`
          update dispatches set token = ${token}
          where id = ${id} and claimed_by = ${replica} and state = 'claimed'`);
      }),

    releaseDispatch: (id, replica) =>
      storeOperation('queue a task again', async () => {
        await db.execute(sql`
          update dispatches set state = 'queued', claimed_by = null, claimed_at = null, token = null
          where id = ${id} and claimed_by = ${replica} and state = 'claimed'`);
      }),

    adoptDispatch: (runId, taskId, token, replica) =>
      storeOperation('adopt a dispatch', async () => {
        const [row] = await rows<DispatchRow>(sql`
          update dispatches set claimed_by = ${replica}
          where run_id = ${runId} and task_id = ${taskId} and token = ${token} and state = 'claimed'
          returning ${DISPATCH_COLUMNS}`);
        return row ? toDispatch(row) : undefined;
      }),

    withdrawDispatch: (id) =>
      storeOperation('withdraw a queued task', async () => {
        const gone = await rows<{ id: unknown }>(
          sql`delete from dispatches where id = ${id} and state = 'queued' returning id`,
        );
        return gone.length > 0;
      }),

    requestCancel: (id, reason) =>
      storeOperation('cancel a dispatch', async () => {
        await db.execute(sql`
          update dispatches set cancel_reason = coalesce(cancel_reason, ${reason})
          where id = ${id} and state <> 'done'`);
      }),

    cancelRequests: (replica) =>
      storeOperation('read cancel requests', async () => {
        const list = await rows<DispatchRow>(sql`
          select ${DISPATCH_COLUMNS} from dispatches
          where claimed_by = ${replica} and state = 'claimed' and cancel_reason is not null`);
        return list.map(toDispatch);
      }),

    addMessages: (messages) =>
      storeOperation('relay agent messages', async () => {
        if (messages.length === 0) return;
        await db.execute(sql`
          insert into dispatch_messages (dispatch_id, token, seq, kind, body)
          select m.dispatch_id, m.token, m.seq, m.kind, m.body
          from jsonb_to_recordset(${JSON.stringify(messages.map(messageRow))}::jsonb)
            as m(dispatch_id bigint, token bigint, seq int, kind text, body jsonb)
          where exists (select 1 from dispatches d where d.id = m.dispatch_id)
          on conflict do nothing`);
      }),

    finishDispatch: (m, replica) =>
      storeOperation('relay a report', async () => {
        await db.execute(sql`
          with d as (
            update dispatches set state = 'done', done_at = now()
            where id = ${m.dispatchId} and state <> 'done' and claimed_by = ${replica}
            returning id
          )
          insert into dispatch_messages (dispatch_id, token, seq, kind, body)
          select ${m.dispatchId}, ${m.token}, ${m.seq}, 'report', ${JSON.stringify(m.body)}::jsonb
          from d
          on conflict do nothing`);
      }),

    messages: (positions) =>
      storeOperation('read relayed messages', async () => {
        if (positions.length === 0) return [];
        const json = JSON.stringify(
          positions.map((p) => ({ dispatch_id: p.dispatchId, token: p.token, seq: p.seq })),
        );
        const list = await rows<{
          dispatch_id: string | number;
          token: string | number;
          seq: number;
          kind: DispatchMessage['kind'];
          body: unknown;
        }>(sql`
          select m.dispatch_id, m.token, m.seq, m.kind, m.body
          from jsonb_to_recordset(${json}::jsonb) as p(dispatch_id bigint, token bigint, seq int)
          join dispatch_messages m on m.dispatch_id = p.dispatch_id
            and (m.token > p.token or (m.token = p.token and m.seq > p.seq))
          order by m.dispatch_id, m.token, m.seq`);
        return list.map((m) => ({
          dispatchId: Number(m.dispatch_id),
          token: Number(m.token),
          seq: Number(m.seq),
          kind: m.kind,
          body: m.body,
        }));
      }),

    deleteDispatch: (id) =>
      storeOperation('forget a dispatch', async () => {
        await db.execute(sql`delete from dispatches where id = ${id}`);
      }),

    claimOrphans: (replica, silentMs, limit) =>
      storeOperation('claim orphaned dispatches', async () => {
        const claimed = await rows<DispatchRow>(sql`
          update dispatches set claimed_by = ${replica}
          where id in (
            select d.id from dispatches d
            where d.state = 'claimed' and d.claimed_by <> ${replica}
              and not exists (
                select 1 from replicas r
                where r.id = d.claimed_by and r.stopped_at is null
                  and r.heartbeat_at > now() - ${interval(silentMs)}::interval)
            order by d.id
            limit ${limit}
            for update of d skip locked)
          returning ${DISPATCH_COLUMNS}`);
        return claimed.map(toDispatch);
      }),

    listClaimed: (replica, olderThanMs) =>
      storeOperation('list claimed dispatches', async () => {
        const list = await rows<DispatchRow>(sql`
          select ${DISPATCH_COLUMNS} from dispatches
          where claimed_by = ${replica} and state = 'claimed'
            and claimed_at < now() - ${interval(olderThanMs)}::interval`);
        return list.map(toDispatch);
      }),

    failDispatch: (id, replica, report) =>
      storeOperation('fail a dispatch over', async () => {
        const done = await rows<{ id: unknown }>(sql`
          with d as (
            update dispatches set state = 'done', done_at = now()
            where id = ${id} and claimed_by = ${replica} and state = 'claimed'
            returning id, run_id, task_id, token
          ),
          l as (
            update task_leases t set state = 'revoked', finished_at = now()
            from d where t.run_id = d.run_id and t.task_id = d.task_id and t.token = d.token
              and t.state = 'granted'
            returning 1
          ),
          m as (
            insert into dispatch_messages (dispatch_id, token, seq, kind, body)
            select d.id, coalesce(d.token, 0), ${HUB_REPORT_SEQ}, 'report',
              ${JSON.stringify(report)}::jsonb
            from d
            on conflict do nothing
            returning 1
          )
          select id from d`);
        return done.length > 0;
      }),

    pruneDispatches: () =>
      storeOperation('prune dispatches', async () => {
        // Once the task row shows the attempt's outcome (or the run ended), nobody needs it: a
        // driver taking the run over reads the task, not the dispatch.
        const gone = await rows<{ id: unknown }>(sql`
          delete from dispatches d using runs r, tasks k
          where r.id = d.run_id and k.run_id = d.run_id and k.id = d.task_id
            and (r.status not in ${unfinished}
              or (d.state = 'done' and d.mode = 'execute'
                  and (k.status <> 'running' or k.attempts <> d.attempt))
              or (d.state = 'done' and d.mode = 'compensate' and k.compensated))
          returning d.id`);
        return gone.length;
      }),
  };
}

const DISPATCH_COLUMNS = sql.raw(
  'id, run_id, task_id, attempt, mode, server, assignment, state, owner, claimed_by, token, cancel_reason',
);

interface DispatchRow {
  id: string | number;
  run_id: string;
  task_id: string;
  attempt: number;
  mode: DispatchRecord['mode'];
  server: string;
  assignment: unknown;
  state: DispatchRecord['state'];
  owner: string;
  claimed_by: string | null;
  token: string | number | null;
  cancel_reason: string | null;
}

function toDispatch(r: DispatchRow): DispatchRecord {
  return {
    id: Number(r.id),
    runId: r.run_id,
    taskId: r.task_id,
    attempt: Number(r.attempt),
    mode: r.mode,
    server: r.server,
    assignment: r.assignment,
    state: r.state,
    owner: r.owner,
    claimedBy: r.claimed_by,
    token: r.token === null ? null : Number(r.token),
    cancelReason: r.cancel_reason,
  };
}

function messageRow(m: DispatchMessage) {
  return { dispatch_id: m.dispatchId, token: m.token, seq: m.seq, kind: m.kind, body: m.body };
}
