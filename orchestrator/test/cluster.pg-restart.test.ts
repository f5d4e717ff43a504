/**
 * PostgreSQL restarted under load: replicas reconnect and carry on, and every run finishes with
 * no step run twice. The server is one of the test's own (helpers/private-postgres.ts), since
 * restarting the shared one would cut every other test file off.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from 'vitest';
import type { WorkflowInput } from '../../schemas/src/workflow.ts';
import { startCluster, type Cluster } from './helpers/cluster.ts';
import { until } from './helpers/agents.ts';
import {
  postgresBinDir,
  startPrivatePostgres,
  type PrivatePostgres,
} from '../../scripts/cluster/private-postgres.ts';

const SERVERS = ['db-1', 'db-2'];

function chain(name: string, log: string): WorkflowInput {
  const line = (what: string) => `echo "${what} $MUSTER_TASK_ID $MUSTER_ATTEMPT" >> '${log}'`;
  const ops = ['a', 'b', 'c', 'd', 'e'];
  return {
    name,
    servers: SERVERS.map((s) => ({ name: s, provider: 'local' as const })),
    retry_policy: { max_attempts: 3, initial_delay: 1 },
    operations: ops.map((id, i) => ({
      id,
      type: 'update' as const,
      target: 'server' as const,
      ...(i > 0 ? { depends_on: [ops[i - 1]!] } : {}),
      steps: [
        {
          name: 'work',
          type: 'script' as const,
          params: { command: 'sh', args: ['-c', `${line('start')}; sleep 0.5; ${line('end')}`] },
        },
      ],
    })),
  };
}

async function ends(log: string): Promise<string[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.startsWith('end '))
    .map((l) => l.split(' ')[1]!);
}

describe.skipIf(!postgresBinDir())('PostgreSQL restarted under load', () => {
  let pg: PrivatePostgres;
  let cluster: Cluster;
  beforeAll(async () => {
    pg = await startPrivatePostgres();
    cluster = await startCluster({ replicas: 2, servers: SERVERS, server: pg.url });
  }, 180_000);
  afterAll(async () => {
    await cluster?.close();
    await pg?.stop();
  });

  test('replicas reconnect and every run finishes, no step run twice', async () => {
    const [r1, r2] = cluster.replicas as [
      (typeof cluster.replicas)[0],
      (typeof cluster.replicas)[0],
    ];
    const logA = join(cluster.dir, 'a.log');
    const logB = join(cluster.dir, 'b.log');
    const runA = await cluster.submit(r1, chain('restart-a', logA));
    const runB = await cluster.submit(r2, chain('restart-b', logB));
    onTestFailed(async () => {
      console.error(`PostgreSQL restart: see ${await cluster.dump([runA, runB], [logA, logB])}`);
    });
    await until(async () => (await ends(logA)).length >= 3, 60_000);

    await pg.restart();

    expect(await cluster.settled(runA, undefined, 120_000)).toBe('succeeded');
    expect(await cluster.settled(runB, undefined, 120_000)).toBe('succeeded');
    for (const log of [logA, logB]) {
      const done = await ends(log);
      expect(done.sort()).toEqual(
        ['a', 'b', 'c', 'd', 'e'].flatMap((op) => SERVERS.map((s) => `${op}:${s}@${s}`)).sort(),
      );
    }
    // Both replicas lived through it and still serve.
    for (const r of [r1, r2]) expect((await cluster.api(r, '/ready')).status).toBe(200);
  }, 240_000);
});
