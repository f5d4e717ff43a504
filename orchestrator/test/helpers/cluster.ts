/**
 * Cluster test helpers: several real `muster server` replicas over one fresh PostgreSQL
 * database, real `muster agent` processes that know every replica — started as
 * `npm run cluster:demo` starts them (scripts/cluster/topology.ts) — and the API, WebSocket and
 * SQL views tests check them through.
 *
 * @module
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { WebSocket } from 'ws';
import type { WorkflowInput } from '../../../schemas/src/workflow.ts';
import type { RunStatus } from '../../src/engine/types.ts';
import {
  startAgentProcess,
  startReplicaProcess,
  type MusterProcess,
  type ReplicaProcess,
} from '../../../scripts/cluster/topology.ts';
import { createTestDatabase } from './databases.ts';
import { until } from './agents.ts';

/** Tokens every replica accepts. */
export const CLUSTER_TOKENS = {
  operator: 'op-cluster',
  viewer: 'view-cluster',
  agent: 'agent-cluster',
};

export type { ReplicaProcess };

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  readonly replicas: number;
  /** Agents to start, one per server name. */
  readonly servers?: readonly string[];
  /** Run lease timeout of the replicas. @default 3000 */
  readonly leaseTtlMs?: number;
  /** The PostgreSQL server to make the cluster's database on. @default TEST_DATABASE_URL */
  readonly server?: string;
  /** Agents' heartbeat. @default 1000 */
  readonly agentHeartbeatMs?: number;
}

/** Replicas, agents, and what tests need around them. */
export interface Cluster {
  readonly dir: string;
  readonly databaseUrl: string;
  readonly replicas: ReplicaProcess[];
  readonly agents: Map<string, MusterProcess>;
  /** Inspects the shared database. */
  readonly sql: postgres.Sql;
  startReplica(id: string): Promise<ReplicaProcess>;
  startAgent(server: string): MusterProcess;
  /** Calls a replica's API as an operator. */
  api(replica: ReplicaProcess, path: string, init?: RequestInit): Promise<Response>;
  /** Submits a workflow (JSON) through a replica; returns the run id. */
  submit(replica: ReplicaProcess, workflow: WorkflowInput): Promise<string>;
  /** The replica holding a run's lease now. */
  ownerOf(runId: string): Promise<string | null>;
  /**
   * Writes what the replicas and agents said, the runs' events and the step logs to a file
   * beside the cluster's directory, for a failed test to point at; returns its path.
   */
  dump(runIds: readonly string[], logs?: readonly string[]): Promise<string>;
  /** Waits until a run is in one of `statuses`, read from the store. */
  settled(runId: string, statuses?: readonly RunStatus[], timeoutMs?: number): Promise<RunStatus>;
  close(): Promise<void>;
}

const FINAL: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled', 'rolled_back'];

/** Starts replicas `r1`…`rN` and one agent per server, each agent knowing every replica. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'muster-cluster-'));
  const db = await createTestDatabase(options.server);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  const tokensFile = join(dir, 'tokens');
  await writeFile(
    tokensFile,
    `operator:${CLUSTER_TOKENS.operator}\nviewer:${CLUSTER_TOKENS.viewer}\nagent:${CLUSTER_TOKENS.agent}:*\n`,
  );
  const replicas: ReplicaProcess[] = [];
  const agents = new Map<string, MusterProcess>();

  const startReplica = async (id: string): Promise<ReplicaProcess> => {
    const replica = await startReplicaProcess({
      id,
      databaseUrl: db.url,
      tokensFile,
      stateDir: join(dir, id),
      leaseTtlMs: options.leaseTtlMs ?? 3000,
      agentHeartbeatMs: options.agentHeartbeatMs ?? 1000,
    });
    const at = replicas.findIndex((r) => r.id === id);
    if (at >= 0) replicas[at] = replica;
    else replicas.push(replica);
    return replica;
  };

  for (let i = 1; i <= options.replicas; i++) await startReplica(`r${i}`);

  const startAgent = (server: string) => {
    // Each agent tries the replicas from a different one, so they spread.
    const n = agents.size;
    const urls = replicas.map((_, i) => replicas[(i + n) % replicas.length]!.url);
    const agent = startAgentProcess({
      server,
      urls,
      token: CLUSTER_TOKENS.agent,
      workdir: join(dir, 'servers', server),
    });
    agents.set(server, agent);
    return agent;
  };
  for (const server of options.servers ?? []) startAgent(server);
  if (options.servers?.length) {
    await until(async () => {
      const rows = await sql<{ n: number }[]>`
        select count(distinct server)::int as n from agents where status = 'connected'`;
      return rows[0]!.n >= options.servers!.length;
    }, 60_000);
  }

  const api = (replica: ReplicaProcess, path: string, init: RequestInit = {}) =>
    fetch(`${replica.url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${CLUSTER_TOKENS.operator}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
        ...(init.headers as Record<string, string> | undefined),
      },
    });

  return {
    dir,
    databaseUrl: db.url,
    replicas,
    agents,
    sql,
    startReplica,
    startAgent,
    api,
    async submit(replica, workflow) {
      const res = await api(replica, '/workflows/batch', {
        method: 'POST',
        body: JSON.stringify(workflow),
      });
      const body = (await res.json()) as { id?: string };
      if (res.status !== 201 || !body.id) {
        throw new Error(`submit answered ${res.status}: ${JSON.stringify(body)}`);
      }
      return body.id;
    },
    async dump(runIds, logs = []) {
      const parts = [
        ...replicas.map((r) => `== replica ${r.id}\n${r.output()}`),
        ...[...agents].map(([s, a]) => `== agent ${s}\n${a.output()}`),
      ];
      for (const log of logs) {
        parts.push(`== ${log}\n${await readFile(log, 'utf8').catch(() => '')}`);
      }
      for (const runId of runIds) {
        const events = await sql`select seq, type, task_id, data from events
          where run_id = ${runId} order by seq`.catch(() => []);
        const runs = await sql`select status, lease_owner, lease_token, lease_expires_at from runs
          where id = ${runId}`.catch(() => []);
        const dispatches =
          await sql`select id, task_id, attempt, mode, state, owner, claimed_by, token
          from dispatches where run_id = ${runId} order by id`.catch(() => []);
        parts.push(
          `== run ${runId} ${JSON.stringify(runs)}`,
          ...events.map((e) => JSON.stringify(e)),
          '-- dispatches',
          ...dispatches.map((d) => JSON.stringify(d)),
        );
      }
      const file = `${dir}-dump-${Date.now()}.txt`;
      await writeFile(file, parts.join('\n'));
      return file;
    },
    async ownerOf(runId) {
      const [row] = await sql<{ lease_owner: string | null }[]>`
        select lease_owner from runs where id = ${runId}`;
      return row?.lease_owner ?? null;
    },
    async settled(runId, statuses = FINAL, timeoutMs = 90_000) {
      let status: RunStatus | undefined;
      await until(async () => {
        const [row] = await sql<
          { status: RunStatus }[]
        >`select status from runs where id = ${runId}`;
        status = row?.status;
        return status !== undefined && statuses.includes(status);
      }, timeoutMs);
      return status!;
    },
    async close() {
      for (const agent of agents.values()) agent.child.kill('SIGKILL');
      for (const r of replicas) r.child.kill('SIGKILL');
      await Promise.all([
        ...[...agents.values()].map((a) => a.exited),
        ...replicas.map((r) => r.exited),
      ]);
      await sql.end();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A WebSocket client of one run that records every event it gets. */
export function followRun(
  replica: ReplicaProcess,
  runId: string,
): { events: Array<{ seq: number; type: string }>; ended: Promise<string>; close(): void } {
  const ws = new WebSocket(`${replica.url.replace('http', 'ws')}/ws`, {
    headers: { authorization: `Bearer ${CLUSTER_TOKENS.viewer}` },
  });
  const events: Array<{ seq: number; type: string }> = [];
  const ended = new Promise<string>((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', runs: [runId] })));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as {
        type: string;
        event?: { seq: number; type: string };
        status?: string;
      };
      if (m.type === 'event') events.push({ seq: m.event!.seq, type: m.event!.type });
      if (m.type === 'end') resolve(m.status!);
    });
    ws.on('close', (code) => reject(new Error(`the WebSocket closed with ${code}`)));
    ws.on('error', reject);
  });
  ended.catch(() => {});
  return { events, ended, close: () => ws.close() };
}
