/**
 * Replicas on one PostgreSQL, as real processes: a run whose replica is killed with SIGKILL
 * finishes on another, no finished step runs twice, and a WebSocket client of a surviving replica
 * sees every event of it in order. Needs `TEST_DATABASE_URL`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from 'vitest';
import type { WorkflowInput } from '../../schemas/src/workflow.ts';
import { TEST_DATABASE_URL } from './helpers/databases.ts';
import { startCluster, followRun, type Cluster } from './helpers/cluster.ts';
import { until } from './helpers/agents.ts';

const SERVERS = ['web-1', 'web-2', 'web-3'];

/** Four operations in a chain over three agent servers; every step logs its start and end. */
function chain(name: string, log: string, sleep = 0.4): WorkflowInput {
  const line = (what: string) => `echo "${what} $MUSTER_TASK_ID $MUSTER_ATTEMPT" >> '${log}'`;
  const step = {
    name: 'work',
    type: 'script' as const,
    params: { command: 'sh', args: ['-c', `${line('start')}; sleep ${sleep}; ${line('end')}`] },
  };
  return {
    name,
    servers: SERVERS.map((s) => ({ name: s, provider: 'local' as const })),
    retry_policy: { max_attempts: 3, initial_delay: 1 },
    operations: ['a', 'b', 'c', 'd'].map((id, i) => ({
      id,
      type: 'update' as const,
      target: 'server' as const,
      ...(i > 0 ? { depends_on: [['a', 'b', 'c', 'd'][i - 1]!] } : {}),
      steps: [step],
    })),
  };
}

async function lines(log: string): Promise<Array<{ what: string; task: string; attempt: number }>> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [what, task, attempt] = l.split(' ');
      return { what: what!, task: task!, attempt: Number(attempt) };
    });
}

describe.skipIf(!TEST_DATABASE_URL)('replicas on one PostgreSQL', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 3, servers: SERVERS });
  }, 180_000);
  afterAll(async () => cluster?.close());

  test('a run whose replica is killed finishes on another; no step runs twice; a WebSocket client of a survivor sees every event in order', async () => {
    const [r1, r2, r3] = cluster.replicas as [
      (typeof cluster.replicas)[0],
      (typeof cluster.replicas)[0],
      (typeof cluster.replicas)[0],
    ];
    const logA = join(cluster.dir, 'a.log');
    const logB = join(cluster.dir, 'b.log');
    const runA = await cluster.submit(r1, chain('failover-a', logA));
    onTestFailed(async () => {
      console.error(`cluster failover: see ${await cluster.dump([runA], [logA])}`);
    });
    const runB = await cluster.submit(r2, chain('failover-b', logB));
    // The replica a run is submitted to drives it.
    expect(await cluster.ownerOf(runA)).toBe('r1');
    expect(await cluster.ownerOf(runB)).toBe('r2');
    const follower = followRun(r3, runA);

    // Mid-way: the first operation done on every server, the second under way.
    await until(
      async () => (await lines(logA)).filter((l) => l.what === 'end').length >= 4,
      60_000,
    );
    r1.child.kill('SIGKILL');
    await r1.exited;

    expect(await cluster.settled(runA)).toBe('succeeded');
    expect(await cluster.settled(runB)).toBe('succeeded');
    expect(await follower.ended).toBe('succeeded');

    for (const log of [logA, logB]) {
      const all = await lines(log);
      const ends = all.filter((l) => l.what === 'end');
      // Every task finished once, and nothing started again after it finished.
      expect(ends.map((l) => l.task).sort()).toEqual(
        ['a', 'b', 'c', 'd'].flatMap((op) => SERVERS.map((s) => `${op}:${s}@${s}`)).sort(),
      );
      for (const end of ends) {
        const after = all.slice(all.indexOf(end) + 1);
        expect(after.filter((l) => l.task === end.task)).toEqual([]);
      }
    }

    // The survivor's client got the whole log of the run, in order, each event once.
    const [count] = await cluster.sql<{ n: number }[]>`
      select count(*)::int as n from events where run_id = ${runA}`;
    expect(follower.events.map((e) => e.seq)).toEqual(
      Array.from({ length: count!.n }, (_, i) => i + 1),
    );
    follower.close();

    // Another replica took the run over and said so.
    const [took] = await cluster.sql<{ n: number }[]>`
      select count(*)::int as n from events
      where run_id = ${runA} and type = 'run:started' and (data->>'resumed')::boolean`;
    expect(took!.n).toBeGreaterThanOrEqual(1);
    expect(r2.output() + r3.output()).toMatch(new RegExp(`took over 1 run\\(s\\): ${runA}`));
  }, 180_000);

  test('control actions and streams work through any replica, whichever drives the run', async () => {
    const [, r2, r3] = cluster.replicas as [
      (typeof cluster.replicas)[0],
      (typeof cluster.replicas)[0],
      (typeof cluster.replicas)[0],
    ];
    const log = join(cluster.dir, 'control.log');
    const runId = await cluster.submit(r2, chain('control', log, 0.6));
    onTestFailed(async () => {
      console.error(`cluster control: see ${await cluster.dump([runId], [log])}`);
    });
    expect(await cluster.ownerOf(runId)).toBe('r2');
    const post = async (action: string, body: unknown = {}) => {
      const res = await cluster.api(r3, `/workflows/${runId}/${action}`, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { status?: string; code?: string } };
    };
    // Paused through r3: r2, which drives the run, carries it out.
    expect(await post('pause')).toEqual({ status: 202, body: { id: runId, status: 'paused' } });
    // A second pause is refused by r2 with its own code, and r3 says so.
    const again = await post('pause');
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('ORC1002');
    const statusRes = await cluster.api(r3, `/workflows/${runId}/status`);
    expect(((await statusRes.json()) as { status: string }).status).toBe('paused');
    expect(await cluster.ownerOf(runId)).toBe('r2');

    // Server-sent events from r3 of a run r2 drives, from the first event to the end.
    const sse = await cluster.api(r3, `/workflows/${runId}/logs?follow=1`, {
      headers: { accept: 'text/event-stream' },
    });
    expect(sse.status).toBe(200);
    expect(await post('resume')).toEqual({ status: 202, body: { id: runId, status: 'running' } });
    const text = await sse.text();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    const [count] = await cluster.sql<{ n: number }[]>`
      select count(*)::int as n from events where run_id = ${runId}`;
    expect(ids).toEqual(Array.from({ length: count!.n }, (_, i) => i + 1));
    expect(text).toMatch(/event: run:succeeded/);
    expect(await cluster.settled(runId)).toBe('succeeded');

    // A finished run is rolled back through r3: its lease is free, so r3 drives it now, then
    // lets it go again.
    const rollback = await post('rollback');
    expect(rollback).toMatchObject({ status: 202, body: { status: 'rolling_back' } });
    expect(await cluster.settled(runId, ['rolled_back'])).toBe('rolled_back');
    await until(async () => (await cluster.ownerOf(runId)) === null, 10_000);
    const [by] = await cluster.sql<{ n: number }[]>`
      select count(*)::int as n from events where run_id = ${runId} and type = 'run:rolled_back'`;
    expect(by!.n).toBe(1);
    const cluster3 = (await (await cluster.api(r3, '/cluster')).json()) as {
      replica: string;
      leased: boolean;
      replicas: Array<{ id: string; live: boolean }>;
    };
    expect(cluster3.replica).toBe('r3');
    expect(cluster3.leased).toBe(true);
    expect(
      cluster3.replicas
        .filter((r) => r.live)
        .map((r) => r.id)
        .sort(),
    ).toEqual(['r2', 'r3']);
  }, 120_000);
});
