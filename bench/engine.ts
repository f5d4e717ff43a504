/**
 * bench/engine: how fast the engine drives no-op tasks, against two baselines measured in the
 * same run on the same database:
 * - the store alone: the minimum writes a task needs (intent and result: task row, attempt row,
 *   two events), committed in batches the way the engine does, with nothing else;
 * - graphile-worker (PostgreSQL only): no-op jobs/s on the same server, the reference peer.
 *
 * Workloads: 1,000 and 10,000 tasks, flat (one operation) and as a DAG (operations of 10 tasks
 * depending on about two earlier ones). Task overhead: the time between consecutive tasks of a
 * 500-task chain, where each task can start only when the previous one's result is committed.
 *
 * Run: `npm run bench:engine` (PGlite; PostgreSQL too when DATABASE_URL or TEST_DATABASE_URL is
 * set). Targets: PGlite ≥ 2,000 tasks/s; PostgreSQL ≥ graphile-worker; p50 overhead < 2 ms.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import postgres from 'postgres';
import * as v from 'valibot';
import { WorkflowSchema, type WorkflowInput } from '../schemas/src/workflow.ts';
import { planWorkflow } from '../orchestrator/src/plan/index.ts';
import { RunDriver } from '../orchestrator/src/engine/run-driver.ts';
import type { Dispatcher } from '../orchestrator/src/engine/dispatch.ts';
import { createStore, type Store, type StoreOptions } from '../orchestrator/src/store/index.ts';
import type { Batch } from '../orchestrator/src/engine/types.ts';

const PG_URL = process.env['DATABASE_URL'] || process.env['TEST_DATABASE_URL'];
const SIZES = (process.env['BENCH_SIZES'] ?? '1000,10000').split(',').map(Number);
const CONCURRENCY = 64;

const noop: Dispatcher = {
  dispatch: async (_a, hooks) => {
    hooks.step({ index: 0, name: 'noop', status: 'succeeded' });
    return {
      status: 'succeeded',
      result: { steps: [{ index: 0, name: 'noop', status: 'succeeded' }] },
    };
  },
};

const step = [{ name: 'noop', type: 'echo' as const, params: { message: '' } }];

/** `n` no-op tasks in one operation. */
export function flat(n: number): WorkflowInput {
  const items = Array.from({ length: n }, (_, i) => `t${i}`);
  return {
    name: 'flat',
    operations: [{ id: 'all', type: 'update', target: 'cluster', items, steps: step }],
  };
}

function dag(n: number): WorkflowInput {
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const ops = Math.max(1, Math.floor(n / 10));
  return {
    name: 'dag',
    operations: Array.from({ length: ops }, (_, i) => ({
      id: `op${i}`,
      type: 'update' as const,
      target: 'cluster' as const,
      items: Array.from({ length: 10 }, (_, j) => `t${j}`),
      depends_on:
        i === 0 ? [] : [...new Set([`op${Math.floor(rand() * i)}`, `op${Math.floor(rand() * i)}`])],
      steps: step,
    })),
  };
}

function chain(n: number): WorkflowInput {
  return {
    name: 'chain',
    operations: Array.from({ length: n }, (_, i) => ({
      id: `c${i}`,
      type: 'update' as const,
      target: 'cluster' as const,
      items: ['x'],
      depends_on: i === 0 ? [] : [`c${i - 1}`],
      steps: step,
    })),
  };
}

let runCounter = 0;

/** Runs `input` to the end on `store` with the engine alone; resolves with tasks and ms. */
export async function drive(store: Store, input: WorkflowInput, dispatcher: Dispatcher = noop) {
  const workflow = v.parse(WorkflowSchema, input);
  const plan = planWorkflow(workflow);
  const id = `bench-${++runCounter}-${randomBytes(3).toString('hex')}`;
  await store.createRun({ id, name: workflow.name, workflow, plan });
  const driver = await RunDriver.load(id, { store, dispatcher, concurrency: CONCURRENCY });
  const t0 = performance.now();
  await driver.start();
  const status = await driver.done;
  if (status !== 'succeeded') throw new Error(`bench run ${id} ended ${status}`);
  return { tasks: plan.tasks.length, ms: performance.now() - t0 };
}

async function overhead(store: Store): Promise<{ p50: number; p99: number }> {
  const starts: number[] = [];
  const timed: Dispatcher = {
    dispatch: (a, hooks) => {
      starts.push(performance.now());
      return noop.dispatch(a, hooks);
    },
  };
  await drive(store, chain(500), timed);
  const gaps = starts
    .slice(1)
    .map((t, i) => t - starts[i]!)
    .sort((a, b) => a - b);
  return { p50: gaps[Math.floor(gaps.length * 0.5)]!, p99: gaps[Math.floor(gaps.length * 0.99)]! };
}

/** The store's limit: the writes of `n` tasks, in commits of CONCURRENCY tasks, nothing else. */
async function storeLimit(store: Store, n: number): Promise<number> {
  const workflow = v.parse(WorkflowSchema, flat(n));
  const plan = planWorkflow(workflow);
  const id = `limit-${++runCounter}-${randomBytes(3).toString('hex')}`;
  await store.createRun({ id, name: 'limit', workflow, plan });
  let seq = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i += CONCURRENCY) {
    const ids = plan.tasks.slice(i, i + CONCURRENCY).map((t) => t.id);
    const now = new Date();
    const write = (status: 'running' | 'succeeded'): Batch => ({
      tasks: ids.map((tid) => ({
        id: tid,
        status,
        attempts: 1,
        attemptBase: 0,
        notBefore: null,
        finishedSeq: null,
        startedAt: now,
        finishedAt: status === 'succeeded' ? now : null,
        result: null,
        failure: null,
        compensated: false,
      })),
      attempts: ids.map((tid) => ({
        taskId: tid,
        attempt: 1,
        status,
        startedAt: now,
        finishedAt: status === 'succeeded' ? now : null,
        failure: null,
      })),
      events: ids.map((tid) => ({
        runId: id,
        seq: ++seq,
        type: status === 'running' ? 'task:started' : 'task:succeeded',
        at: now,
        operationId: 'all',
        taskId: tid,
        data: { attempt: 1, queue: 'orchestrator' } as never,
      })),
    });
    await store.commit(id, write('running'));
    await store.commit(id, write('succeeded'));
  }
  return (n / (performance.now() - t0)) * 1000;
}

async function graphileWorker(url: string, n: number): Promise<number | undefined> {
  const { run, quickAddJob, makeWorkerUtils } = await import('graphile-worker');
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  await utils.release();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  // Bulk-add n jobs at once, then time how long workers take to drain them.
  await sql`select graphile_worker.add_jobs(array(select json_populate_record(null::graphile_worker.job_spec, json_build_object('identifier', 'noop', 'payload', '{}'::json)) from generate_series(1, ${n})))`;
  await sql.end();
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const t0 = performance.now();
  const runner = await run({
    connectionString: url,
    concurrency: 10,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: new (await import('graphile-worker')).Logger(() => () => {}),
    taskList: {
      noop: async () => {
        if (++done === n) resolveAll();
      },
    },
  });
  await all;
  const ms = performance.now() - t0;
  await runner.stop();
  void quickAddJob;
  return (n / ms) * 1000;
}

async function freshPostgres(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `muster_bench_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG_URL!, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL!);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(PG_URL!, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

async function benchDriver(label: string, options: StoreOptions, pgUrl?: string): Promise<void> {
  const store = await createStore(options);
  try {
    console.log(`\n== ${label} ==`);
    await drive(store, flat(200)); // warm-up
    for (const n of SIZES) {
      const limit = await storeLimit(store, n);
      for (const [shape, make] of [
        ['flat', flat],
        ['dag', dag],
      ] as const) {
        const r = await drive(store, make(n));
        const rate = (r.tasks / r.ms) * 1000;
        console.log(
          `${shape.padEnd(4)} ${String(r.tasks).padStart(6)} tasks  ${rate.toFixed(0).padStart(6)} tasks/s` +
            `  (store writes alone, 64-task commits: ${limit.toFixed(0)} tasks/s)`,
        );
      }
      if (pgUrl) {
        const gw = await graphileWorker(pgUrl, n);
        if (gw)
          console.log(`graphile-worker ${n} no-op jobs: ${gw.toFixed(0)} jobs/s (reference peer)`);
      }
    }
    const o = await overhead(store);
    console.log(
      `task overhead over a 500-task chain: p50 ${o.p50.toFixed(2)} ms, p99 ${o.p99.toFixed(2)} ms`,
    );
  } finally {
    await store.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchDriver('PGlite (in memory)', { pglite: { dataDir: 'memory://' } });
  if (PG_URL) {
    const db = await freshPostgres();
    try {
      await benchDriver('PostgreSQL', { connectionString: db.url }, db.url);
    } finally {
      await db.drop();
    }
  } else {
    console.log('\n(PostgreSQL skipped: set DATABASE_URL or TEST_DATABASE_URL)');
  }
}
