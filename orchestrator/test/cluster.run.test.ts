/**
 * `muster run` on a PostgreSQL that server replicas share: it drives its run under a lease, so
 * replicas leave it alone; killed, its run is taken over by a replica; started again, it follows
 * the run to its end and prints the result. Needs `TEST_DATABASE_URL`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MUSTER_NODE_ARGS, startReplicaProcess } from '../../scripts/cluster/topology.ts';
import { createTestDatabase, TEST_DATABASE_URL } from './helpers/databases.ts';
import { until } from './helpers/agents.ts';

describe.skipIf(!TEST_DATABASE_URL)('muster run beside server replicas', () => {
  let dir: string;
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muster-run-pg-'));
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a killed muster run is finished by a replica; run again, it prints the result', async () => {
    const log = join(dir, 'steps.log');
    const file = join(dir, 'work.json');
    await writeFile(
      file,
      JSON.stringify({
        name: 'pg-run',
        operations: [
          {
            id: 'tick',
            type: 'update',
            target: 'cluster',
            items: Array.from({ length: 12 }, (_, i) => `t${i}`),
            parallel: false,
            steps: [
              {
                name: 'tick',
                type: 'script',
                params: {
                  command: 'sh',
                  args: ['-c', `echo "$MUSTER_TASK_ID $MUSTER_ATTEMPT" >> '${log}'; sleep 0.3`],
                },
              },
            ],
          },
        ],
      }),
    );
    const args = [...MUSTER_NODE_ARGS, 'run', file, '--id', 'pg-run-1', '--database-url', db.url];
    const first = spawn(
      process.execPath,
      [...args, '--no-progress', '--state-dir', join(dir, 'a')],
      {
        stdio: 'ignore',
      },
    );
    await until(
      async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').length > 3,
      60_000,
    );
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<
        { lease_owner: string }[]
      >`select lease_owner from runs where id = 'pg-run-1'`;
      expect(row!.lease_owner).toMatch(/^run:.*:pg-run-1$/);
      first.kill('SIGKILL');

      const tokens = join(dir, 'tokens');
      await writeFile(tokens, 'operator:op\n');
      const replica = await startReplicaProcess({
        id: 'rescuer',
        databaseUrl: db.url,
        tokensFile: tokens,
        stateDir: join(dir, 'r'),
      });
      try {
        await until(async () => {
          const [r] = await sql<
            { status: string }[]
          >`select status from runs where id = 'pg-run-1'`;
          return r!.status === 'succeeded';
        }, 90_000).catch(async (e: unknown) => {
          const tasks =
            await sql`select id, status, attempts from tasks where run_id = 'pg-run-1' order by position`;
          const run =
            await sql`select status, lease_owner, lease_expires_at, error from runs where id = 'pg-run-1'`;
          const events =
            await sql`select seq, type, task_id, data from events where run_id = 'pg-run-1' order by seq`;
          console.error(
            'RUN',
            JSON.stringify(run),
            '\nTASKS',
            JSON.stringify(tasks),
            '\nEVENTS',
            events
              .map(
                (ev) =>
                  `${ev.seq} ${ev.type} ${ev.task_id} ${JSON.stringify(ev.data).slice(0, 200)}`,
              )
              .join('\n'),
            '\nREPLICA',
            replica.output(),
            '\nLOG',
            await readFile(log, 'utf8'),
          );
          throw e;
        });
        expect(replica.output()).toMatch(/took over 1 run\(s\): pg-run-1/);
      } finally {
        replica.child.kill('SIGKILL');
        await replica.exited;
      }
      // Every tick ran, each attempt once, and nothing ran after an attempt that succeeded. The
      // kill interrupts the tick in flight, which its next attempt runs again; on a starved
      // machine the rescuer may also lose its lease mid-tick and take the run back, which
      // interrupts that tick too: another attempt, recorded as such.
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      const attempts = await sql<{ task_id: string; attempt: number; status: string }[]>`
        select task_id, attempt, status from attempts where run_id = 'pg-run-1'
        order by task_id, attempt`;
      const story = `ran:\n${lines.join('\n')}\nattempts: ${JSON.stringify(attempts)}\nrescuer:\n${replica.output()}`;
      expect(new Set(lines.map((l) => l.split(' ')[0])).size, story).toBe(12);
      expect(new Set(lines).size, story).toBe(lines.length);
      const recorded = new Set(attempts.map((a) => `${a.task_id} ${a.attempt}`));
      expect(
        lines.filter((l) => !recorded.has(l)),
        story,
      ).toEqual([]);
      for (const task of new Set(attempts.map((a) => a.task_id))) {
        const own = attempts.filter((a) => a.task_id === task);
        expect(own.map((a) => a.status).indexOf('succeeded'), story).toBe(own.length - 1);
      }

      const again = await new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(
          process.execPath,
          [...args, '-o', 'json', '--state-dir', join(dir, 'b')],
          (error, stdout) => resolve({ code: error ? Number(error.code) : 0, stdout }),
        ),
      );
      expect(again.code).toBe(0);
      expect((JSON.parse(again.stdout) as { status: string }).status).toBe('succeeded');
    } finally {
      await sql.end();
    }
  }, 180_000);
});
