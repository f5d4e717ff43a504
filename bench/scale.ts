/**
 * bench/scale: how throughput grows with orchestrator replicas on one PostgreSQL, what stops it,
 * and how long a run stands still when the replica driving it dies.
 *
 * - Throughput: 1, 2 and 3 `muster server` replicas (real processes) on a fresh database; runs of
 *   no-op tasks (one echo step each, run in the replica's own process) are submitted round-robin
 *   through the replicas' API, and the clock runs from the first submit until the store shows
 *   every run succeeded. Each replica drives the runs submitted to it.
 * - PostgreSQL's own limit, in the same run: `pgbench` (its built-in TPC-B-like transaction) on a
 *   scratch database of the same server, with as many clients as the replicas use.
 * - Failover: two replicas; a long run submitted to the first, which is killed with SIGKILL once
 *   the run is moving; the time until the second commits the run's next event. Default settings
 *   (a 3 s run lease).
 *
 * PostgreSQL: `DATABASE_URL` or `TEST_DATABASE_URL` (databases are created on that server and
 * dropped), else a private server started from this machine's binaries.
 *
 * Run: `npm run bench:scale` (`BENCH_SCALE_RUNS`, `BENCH_SCALE_TASKS`, `BENCH_SCALE_REPLICAS`).
 * Targets: 2 replicas ≥ 1.6× one replica's throughput, or pgbench shows the server is the limit;
 * failover under 5 s.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';
import { startReplicaProcess, type ReplicaProcess } from '../scripts/cluster/topology.ts';
import {
  postgresBinDir,
  startPrivatePostgres,
  type PrivatePostgres,
} from '../scripts/cluster/private-postgres.ts';

const RUNS = Number(process.env['BENCH_SCALE_RUNS'] ?? 12);
const TASKS = Number(process.env['BENCH_SCALE_TASKS'] ?? 1000);
const REPLICAS = (process.env['BENCH_SCALE_REPLICAS'] ?? '1,2,3').split(',').map(Number);
const TOKEN = `bench-${randomBytes(6).toString('hex')}`;
const run = promisify(execFile);

let server = process.env['DATABASE_URL'] || process.env['TEST_DATABASE_URL'];
let pg: PrivatePostgres | undefined;
if (!server) {
  pg = await startPrivatePostgres();
  server = pg.url;
}
const dir = await mkdtemp(join(tmpdir(), 'muster-bench-scale-'));
const tokensFile = join(dir, 'tokens');
await writeFile(tokensFile, `operator:${TOKEN}\n`);

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `muster_bench_${randomBytes(5).toString('hex')}`;
  const admin = postgres(server!, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(server!);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

async function startReplicas(url: string, n: number): Promise<ReplicaProcess[]> {
  const replicas: ReplicaProcess[] = [];
  // One at a time: the first migrates, and every start is cheaper on a quiet machine.
  for (let i = 1; i <= n; i++) {
    replicas.push(
      await startReplicaProcess({
        id: `bench-r${i}`,
        databaseUrl: url,
        tokensFile,
        stateDir: join(dir, `r${i}-${Date.now()}`),
      }),
    );
  }
  return replicas;
}

async function stop(replicas: ReplicaProcess[]): Promise<void> {
  for (const r of replicas) r.child.kill('SIGKILL');
  await Promise.all(replicas.map((r) => r.exited));
}

function workflow(name: string, tasks: number) {
  return {
    name,
    operations: [
      {
        id: 'noop',
        type: 'update',
        target: 'cluster',
        items: Array.from({ length: tasks }, (_, i) => `t${i}`),
        steps: [{ name: 'noop', type: 'echo', params: { message: '' } }],
        // Quiet: no log files or console lines per task.
      },
    ],
    logging: { destinations: [] as string[] },
  };
}

async function submit(replica: ReplicaProcess, body: unknown): Promise<string> {
  const res = await fetch(`${replica.url}/workflows/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as { id?: string };
  if (res.status !== 201 || !answer.id) {
    throw new Error(`submit answered ${res.status}: ${JSON.stringify(answer)}`);
  }
  return answer.id;
}

/** Busy and total CPU time of the whole machine so far (`/proc/stat`), in clock ticks. */
async function cpuTicks(): Promise<{ busy: number; total: number } | undefined> {
  const { readFile } = await import('node:fs/promises');
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const f = line.split(/\s+/).slice(1).map(Number);
  if (f.length < 5) return undefined;
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Tasks/s of `RUNS` runs of `TASKS` no-op tasks through `n` replicas, and how busy the CPUs were. */
async function throughput(n: number): Promise<{ tps: number; cpu: number | undefined }> {
  return withDatabase(async (url) => {
    const replicas = await startReplicas(url, n);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const t0 = performance.now();
      const c0 = await cpuTicks();
      const ids = await Promise.all(
        Array.from({ length: RUNS }, (_, i) =>
          submit(replicas[i % n]!, workflow(`scale-${i}`, TASKS)),
        ),
      );
      for (;;) {
        const [row] = await sql<{ done: number; failed: number }[]>`
          select count(*) filter (where status = 'succeeded')::int as done,
                 count(*) filter (where status in ('failed', 'cancelled', 'rolled_back'))::int as failed
          from runs where id in ${sql(ids)}`;
        if (row!.failed > 0) throw new Error(`${row!.failed} run(s) did not succeed`);
        if (row!.done === ids.length) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const c1 = await cpuTicks();
      const cpu = c0 && c1 ? (c1.busy - c0.busy) / (c1.total - c0.total) : undefined;
      return { tps: (RUNS * TASKS) / ((performance.now() - t0) / 1000), cpu };
    } finally {
      await sql.end();
      await stop(replicas);
    }
  });
}

/** pgbench transactions/s on a scratch database of the same server. */
async function pgbench(clients: number): Promise<number | undefined> {
  const bin = postgresBinDir();
  if (!bin) return undefined;
  return withDatabase(async (url) => {
    const u = new URL(url);
    const args = ['-h', u.hostname, '-p', u.port || '5432', '-U', u.username || 'postgres'];
    const db = u.pathname.slice(1);
    await run(join(bin, 'pgbench'), [...args, '-i', '-q', '-s', '1', db]);
    const { stdout } = await run(join(bin, 'pgbench'), [
      ...args,
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, cpus().length)),
      '-T',
      '5',
      db,
    ]);
    const m = /tps = ([\d.]+)/.exec(stdout);
    return m ? Number(m[1]) : undefined;
  });
}

/** Milliseconds from SIGKILL of the driving replica until the run's next event, by another. */
async function failover(): Promise<number> {
  return withDatabase(async (url) => {
    const replicas = await startReplicas(url, 2);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const long = {
        name: 'failover',
        operations: [
          {
            id: 'slow',
            type: 'update',
            target: 'cluster',
            items: Array.from({ length: 400 }, (_, i) => `t${i}`),
            parallel: false,
            steps: [{ name: 'tick', type: 'sleep', params: { duration: '50ms' } }],
          },
        ],
        logging: { destinations: [] as string[] },
      };
      const id = await submit(replicas[0]!, long);
      const maxSeq = async () =>
        (
          await sql<{ seq: number }[]>`select coalesce(max(seq), 0)::int as seq from events
          where run_id = ${id}`
        )[0]!.seq;
      while ((await maxSeq()) < 20) await new Promise((r) => setTimeout(r, 20));
      replicas[0]!.child.kill('SIGKILL');
      const killedAt = performance.now();
      await replicas[0]!.exited;
      const before = await maxSeq();
      while ((await maxSeq()) <= before) await new Promise((r) => setTimeout(r, 10));
      return performance.now() - killedAt;
    } finally {
      await sql.end();
      await stop(replicas);
    }
  });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `bench/scale: ${RUNS} runs × ${TASKS} no-op tasks, PostgreSQL ${pg ? '(private server)' : new URL(server).host}, ${cpus().length} CPUs`,
);
const results = new Map<number, number>();
for (const n of REPLICAS) {
  const { tps, cpu } = await throughput(n);
  results.set(n, tps);
  const base = results.get(1);
  console.log(
    `  ${n} replica${n === 1 ? ' ' : 's'}  ${fmt(tps).padStart(7)} tasks/s${
      base && n > 1 ? `   ${(tps / base).toFixed(2)}× one replica` : ''
    }${cpu !== undefined ? `   machine CPUs ${Math.round(cpu * 100)}% busy` : ''}`,
  );
}
const bench = await pgbench(Math.max(...REPLICAS) * 4).catch(() => undefined);
if (bench !== undefined) {
  console.log(
    `  pgbench (TPC-B-like, ${Math.max(...REPLICAS) * 4} clients, same server): ${fmt(bench)} tps` +
      ` — each task commits about once (its result with the next task's start)`,
  );
}
const failovers: number[] = [];
for (let i = 0; i < 3; i++) failovers.push(await failover());
failovers.sort((a, b) => a - b);
console.log(
  `  failover (replica SIGKILLed → run moving again): ${failovers.map((f) => `${(f / 1000).toFixed(2)} s`).join(', ')}` +
    ` (target < 5 s)`,
);
await rm(dir, { recursive: true, force: true });
await pg?.stop();
