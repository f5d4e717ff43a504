/**
 * What the agent hub keeps in the store: agents with their epochs, and task leases with their
 * fencing tokens. Both drivers share this code through drizzle.
 *
 * A lease row exists per task and is updated in place: every grant increments its token, so a
 * token is never handed out twice for a task, even across orchestrator restarts.
 *
 * @module
 */
import { and, eq, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { storeOperation } from './errors.ts';
import * as t from './tables.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyPgDatabase = PgDatabase<PgQueryResultHKT, any, any>;

/** An agent's state as stored. */
export type AgentStatus = 'connected' | 'disconnected' | 'draining' | 'stopped' | 'lost';

/** An agent as stored. */
export interface AgentRecord {
  readonly id: string;
  readonly server: string;
  readonly status: AgentStatus;
  readonly version: string | null;
  readonly epoch: number;
  readonly connectedAt: Date;
  readonly lastHeartbeatAt: Date;
}

/** What a registration found. */
export interface AgentRegistration {
  /** The agent's epoch: a new agent gets one more than the server's newest. */
  readonly epoch: number;
  /** The server's newest epoch, this agent's included. */
  readonly newest: number;
  /** The server the agent id was first registered for (differs only for a reused id). */
  readonly server: string;
  /** Whether the agent id was known already (a reconnection). */
  readonly known: boolean;
}

/** A task lease to grant. */
export interface LeaseGrant {
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly mode: 'execute' | 'compensate';
  readonly agentId: string;
  readonly server: string;
}

/** A lease's state. */
export type LeaseState = 'granted' | 'reported' | 'revoked';

/** A task lease as stored. */
export interface TaskLease extends LeaseGrant {
  readonly token: number;
  readonly state: LeaseState;
  readonly grantedAt: Date;
  readonly finishedAt: Date | null;
}

/** A lease by its task and token. */
export interface LeaseKey {
  readonly runId: string;
  readonly taskId: string;
  readonly token: number;
}

/** How a report's lease stood when it arrived. */
export type LeaseCompletion = 'accepted' | 'duplicate' | 'stale';

/** Agents and task leases. */
export interface AgentStore {
  /** Registers an agent for a server, or marks a known one connected again. */
  registerAgent(agent: {
    readonly id: string;
    readonly server: string;
    readonly version: string;
  }): Promise<AgentRegistration>;
  /** Sets an agent's status. */
  setAgentStatus(id: string, status: AgentStatus): Promise<void>;
  /** Records heartbeats, many agents in one statement. */
  touchAgents(ids: readonly string[], at: Date): Promise<void>;
  /** Agents, of one server or all, newest epoch first. */
  listAgents(server?: string): Promise<AgentRecord[]>;
  /**
   * Grants the task's lease to an agent.
   *
   * @returns the new fencing token: one more than any token granted for the task before
   */
  grantLease(grant: LeaseGrant): Promise<number>;
  /** Grants many leases (of distinct tasks) in one statement; tokens in the same order. */
  grantLeases(grants: readonly LeaseGrant[]): Promise<number[]>;
  /** Marks a lease reported if it is still granted with this token; tells a duplicate apart. */
  completeLease(key: LeaseKey): Promise<LeaseCompletion>;
  /** Completes many leases (of distinct tasks) at once; verdicts in the same order. */
  completeLeases(keys: readonly LeaseKey[]): Promise<LeaseCompletion[]>;
  /** Revokes a lease still granted with this token. */
  revokeLease(key: LeaseKey): Promise<void>;
  /** Revokes every lease an agent still holds; returns them. */
  revokeAgentLeases(agentId: string): Promise<LeaseKey[]>;
  getLease(runId: string, taskId: string): Promise<TaskLease | undefined>;
}

/** Creates the agent store over a drizzle database. */
export function createSqlAgentStore(db: AnyPgDatabase): AgentStore {
  const store: AgentStore = {
    registerAgent: (agent) =>
      storeOperation('register an agent', () =>
        db.transaction(async (tx) => {
          // Two agents of one server registering at once must not get the same epoch.
          await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`agent:${agent.server}`}))`);
          const [max] = await tx
            .select({ newest: sql<number>`coalesce(max(${t.agents.epoch}), 0)`.mapWith(Number) })
            .from(t.agents)
            .where(eq(t.agents.server, agent.server));
          const newest = max?.newest ?? 0;
          const [row] = await tx.select().from(t.agents).where(eq(t.agents.id, agent.id));
          const now = new Date();
          if (row) {
            if (row.server === agent.server) {
              await tx
                .update(t.agents)
                .set({
                  status: 'connected',
                  version: agent.version,
                  connected_at: now,
                  last_heartbeat_at: now,
                })
                .where(eq(t.agents.id, agent.id));
            }
            return { epoch: row.epoch, newest, server: row.server, known: true };
          }
          const epoch = newest + 1;
          await tx.insert(t.agents).values({
            id: agent.id,
            server: agent.server,
            status: 'connected',
            version: agent.version,
            epoch,
            connected_at: now,
            last_heartbeat_at: now,
          });
          return { epoch, newest: epoch, server: agent.server, known: false };
        }),
      ),

    setAgentStatus: (id, status) =>
      storeOperation('set an agent status', async () => {
        await db.update(t.agents).set({ status }).where(eq(t.agents.id, id));
      }),

    touchAgents: (ids, at) =>
      storeOperation('record heartbeats', async () => {
        if (ids.length === 0) return;
        await db.execute(sql`
          update agents set last_heartbeat_at = ${at.toISOString()}::timestamptz
          where id in (select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`);
      }),

    listAgents: (server) =>
      storeOperation('list agents', async () => {
        const rows = await db
          .select()
          .from(t.agents)
          .where(server === undefined ? undefined : eq(t.agents.server, server))
          .orderBy(sql`${t.agents.server}, ${t.agents.epoch} desc`);
        return rows.map((r): AgentRecord => ({
          id: r.id,
          server: r.server,
          status: r.status as AgentStatus,
          version: r.version,
          epoch: r.epoch,
          connectedAt: r.connected_at,
          lastHeartbeatAt: r.last_heartbeat_at,
        }));
      }),

    grantLease: async (grant) => (await store.grantLeases([grant]))[0]!,

    grantLeases: (grants) =>
      storeOperation('grant task leases', async () => {
        if (grants.length === 0) return [];
        const rows = JSON.stringify(
          grants.map((g) => ({
            run_id: g.runId,
            task_id: g.taskId,
            attempt: g.attempt,
            mode: g.mode,
            agent_id: g.agentId,
            server: g.server,
          })),
        );
        // One statement for a whole batch of grants: the token of an existing lease goes up by one.
        const result = await db.execute(sql`
          insert into task_leases (run_id, task_id, token, attempt, mode, agent_id, server, state)
          select g.run_id, g.task_id, 1, g.attempt, g.mode, g.agent_id, g.server, 'granted'
          from jsonb_to_recordset(${rows}::jsonb)
            as g(run_id text, task_id text, attempt int, mode text, agent_id text, server text)
          on conflict (run_id, task_id) do update set
            token = task_leases.token + 1,
            attempt = excluded.attempt,
            mode = excluded.mode,
            agent_id = excluded.agent_id,
            server = excluded.server,
            state = 'granted',
            granted_at = now(),
            finished_at = null
          returning run_id, task_id, token`);
        const tokens = new Map(
          rowsOf<{ run_id: string; task_id: string; token: string | number }>(result).map((r) => [
            `${r.run_id}\n${r.task_id}`,
            Number(r.token),
          ]),
        );
        return grants.map((g) => tokens.get(`${g.runId}\n${g.taskId}`)!);
      }),

    completeLease: async (key) => (await store.completeLeases([key]))[0]!,

    completeLeases: (keys) =>
      storeOperation('complete task leases', async () => {
        if (keys.length === 0) return [];
        const json = JSON.stringify(
          keys.map((k) => ({ run_id: k.runId, task_id: k.taskId, token: k.token })),
        );
        const done = await db.execute(sql`
          update task_leases as t set state = 'reported', finished_at = now()
          from jsonb_to_recordset(${json}::jsonb) as k(run_id text, task_id text, token bigint)
          where t.run_id = k.run_id and t.task_id = k.task_id and t.token = k.token
            and t.state = 'granted'
          returning t.run_id, t.task_id`);
        const accepted = new Set(
          rowsOf<{ run_id: string; task_id: string }>(done).map((r) => `${r.run_id}\n${r.task_id}`),
        );
        const verdicts: LeaseCompletion[] = [];
        for (const key of keys) {
          if (accepted.has(`${key.runId}\n${key.taskId}`)) {
            verdicts.push('accepted');
            continue;
          }
          // Rare: a report sent again, or a stale one. Tell them apart by the stored lease.
          const [row] = await db
            .select({ token: t.taskLeases.token, state: t.taskLeases.state })
            .from(t.taskLeases)
            .where(and(eq(t.taskLeases.run_id, key.runId), eq(t.taskLeases.task_id, key.taskId)));
          verdicts.push(
            row?.token === key.token && row.state === 'reported' ? 'duplicate' : 'stale',
          );
        }
        return verdicts;
      }),

    revokeLease: (key) =>
      storeOperation('revoke a task lease', async () => {
        await db
          .update(t.taskLeases)
          .set({ state: 'revoked', finished_at: sql`now()` })
          .where(
            and(
              eq(t.taskLeases.run_id, key.runId),
              eq(t.taskLeases.task_id, key.taskId),
              eq(t.taskLeases.token, key.token),
              eq(t.taskLeases.state, 'granted'),
            ),
          );
      }),

    revokeAgentLeases: (agentId) =>
      storeOperation("revoke an agent's leases", async () => {
        const rows = await db
          .update(t.taskLeases)
          .set({ state: 'revoked', finished_at: sql`now()` })
          .where(and(eq(t.taskLeases.agent_id, agentId), eq(t.taskLeases.state, 'granted')))
          .returning({
            runId: t.taskLeases.run_id,
            taskId: t.taskLeases.task_id,
            token: t.taskLeases.token,
          });
        return rows;
      }),

    getLease: (runId, taskId) =>
      storeOperation('read a task lease', async () => {
        const [r] = await db
          .select()
          .from(t.taskLeases)
          .where(and(eq(t.taskLeases.run_id, runId), eq(t.taskLeases.task_id, taskId)));
        if (!r) return undefined;
        return {
          runId: r.run_id,
          taskId: r.task_id,
          token: r.token,
          attempt: r.attempt,
          mode: r.mode as TaskLease['mode'],
          agentId: r.agent_id,
          server: r.server,
          state: r.state as LeaseState,
          grantedAt: r.granted_at,
          finishedAt: r.finished_at,
        };
      }),
  };
  return store;
}

/** The rows of a raw query, whichever driver ran it. @internal */
export function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}
