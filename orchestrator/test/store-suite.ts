/**
 * The store suite: one set of tests that every driver must pass.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createStore, LeaseLostError, type Store } from '../src/store/index.ts';
import type { Plan } from '../src/plan/types.ts';
import type { NewRunEvent } from '../src/engine/types.ts';
import { freshStoreOptions } from './helpers/databases.ts';
import { summarizeOverview, summarizeRun } from '../src/status.ts';

const plan: Plan = {
  workflow: 'wf',
  type: 'batch',
  operations: [
    {
      id: 'a',
      type: 'update',
      target: 'cluster',
      level: 0,
      depends_on: [],
      tasks: ['a:x', 'a:y'],
      parallel: true,
      timeout: 300,
      on_failure: 'rollback',
      retry_policy: {
        max_attempts: 3,
        backoff: 'exponential',
        initial_delay: 5,
        max_delay: 300,
        non_retryable: [],
      },
      rollout: {
        strategy: 'parallel',
        batch_size: 1,
        batch_delay: 0,
        max_failures: 0,
        canary_percentage: 10,
        canary_promotion: 'manual',
      },
    },
  ],
  tasks: [
    { id: 'a:x', operation: 'a', item: 'x', queue: 'orchestrator', steps: [], compensation: [] },
    { id: 'a:y', operation: 'a', item: 'y', queue: 'orchestrator', steps: [], compensation: [] },
  ],
  edges: [],
};

const event = (
  runId: string,
  seq: number,
  type: NewRunEvent['type'] = 'run:started',
): NewRunEvent => ({
  runId,
  seq,
  type,
  at: new Date(),
  operationId: null,
  taskId: null,
  data: { resumed: false },
});

/** Runs the store suite against one driver. */
export function storeSuite(driver: 'pglite' | 'postgres'): void {
  describe(`store on ${driver}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      const fresh = await freshStoreOptions(driver);
      cleanup = fresh.cleanup;
      store = await createStore(fresh.options);
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    test('migrating again changes nothing', async () => {
      await expect(store.migrate()).resolves.toBeUndefined();
    });

    test('creates a run with its operations and tasks', async () => {
      const { run, created } = await store.createRun({
        id: 'r1',
        name: 'wf',
        workflow: { name: 'wf' },
        plan,
      });
      expect(created).toBe(true);
      expect(run.status).toBe('pending');
      const snap = await store.loadRun('r1');
      expect(snap?.operations.map((o) => [o.id, o.status])).toEqual([['a', 'pending']]);
      expect(snap?.tasks.map((t) => [t.id, t.queue, t.status])).toEqual([
        ['a:x', 'orchestrator', 'pending'],
        ['a:y', 'orchestrator', 'pending'],
      ]);
      expect(snap?.lastSeq).toBe(0);
    });

    test('an idempotency key returns the existing run', async () => {
      const first = await store.createRun({
        id: 'r2',
        name: 'wf',
        workflow: {},
        plan,
        idempotencyKey: 'k1',
      });
      const again = await store.createRun({
        id: 'r3',
        name: 'wf',
        workflow: {},
        plan,
        idempotencyKey: 'k1',
      });
      expect(first.created).toBe(true);
      expect(again).toMatchObject({ created: false, run: { id: 'r2' } });
      expect(await store.getRun('r3')).toBeUndefined();
    });

    test('commits a batch atomically and reads it back', async () => {
      const at = new Date('2026-01-01T00:00:00Z');
      await store.commit('r1', {
        run: { status: 'running', startedAt: at },
        tasks: [
          {
            id: 'a:x',
            status: 'succeeded',
            attempts: 1,
            attemptBase: 0,
            notBefore: null,
            finishedSeq: 3,
            startedAt: at,
            finishedAt: at,
            result: {
              steps: [{ index: 0, name: 's', status: 'succeeded', rollbackData: { old: 1 } }],
            },
            failure: null,
            compensated: false,
          },
        ],
        attempts: [
          {
            taskId: 'a:x',
            attempt: 1,
            status: 'succeeded',
            startedAt: at,
            finishedAt: at,
            failure: null,
          },
        ],
        events: [event('r1', 1), event('r1', 2, 'run:paused')],
        checkpoint: {
          number: 1,
          at,
          eventSeq: 2,
          completedOperations: [],
          completedTasks: ['a:x'],
        },
      });
      const snap = await store.loadRun('r1');
      expect(snap?.run.status).toBe('running');
      expect(snap?.tasks[0]).toMatchObject({ status: 'succeeded', attempts: 1, finishedSeq: 3 });
      expect(snap?.tasks[0]?.result?.steps[0]?.rollbackData).toEqual({ old: 1 });
      expect(snap?.checkpoints).toHaveLength(1);
      expect(snap?.lastSeq).toBe(2);
      expect((await store.attempts('r1')).map((a) => [a.taskId, a.attempt, a.status])).toEqual([
        ['a:x', 1, 'succeeded'],
      ]);
    });

    test('an overview counts the tasks the snapshot holds, without reading them', async () => {
      const overview = await store.runOverview('r1');
      expect(overview?.taskCounts).toEqual(
        expect.arrayContaining([
          { operationId: 'a', status: 'succeeded', count: 1 },
          { operationId: 'a', status: 'pending', count: 1 },
        ]),
      );
      expect(overview?.run).not.toHaveProperty('plan');
      expect(summarizeOverview(overview!)).toEqual(summarizeRun((await store.loadRun('r1'))!));
      expect(await store.runOverview('no-such-run')).toBeUndefined();
    });

    test('a failing batch leaves nothing behind', async () => {
      // Seq 2 exists already: the whole batch must roll back, task update included.
      await expect(
        store.commit('r1', {
          tasks: [
            {
              id: 'a:y',
              status: 'running',
              attempts: 1,
              attemptBase: 0,
              notBefore: null,
              finishedSeq: null,
              startedAt: new Date(),
              finishedAt: null,
              result: null,
              failure: null,
              compensated: false,
            },
          ],
          events: [event('r1', 2)],
        }),
      ).rejects.toThrow(/ORC1101/);
      const snap = await store.loadRun('r1');
      expect(snap?.tasks[1]?.status).toBe('pending');
    });

    test('commits any text as it is: quotes, backslashes, SQL, placeholders, non-ASCII', async () => {
      // PGlite's prepared commit sends values as literals: none may end one early or be read.
      const text = `it's "q" \\ \\' E'x\\' '); drop table runs; -- $1 $$ \\n\n\tünï 🚀 \\u0041`;
      const failure = { type: 'error', message: text, details: { [text]: [text] } };
      await store.commit('r1', {
        tasks: [
          {
            id: 'a:y',
            status: 'failed',
            attempts: 1,
            attemptBase: 0,
            notBefore: null,
            finishedSeq: null,
            startedAt: null,
            finishedAt: null,
            result: { steps: [{ index: 0, name: text, status: 'failed', outputs: { k: text } }] },
            failure,
            compensated: false,
          },
        ],
        attempts: [
          {
            taskId: 'a:y',
            attempt: 1,
            status: 'failed',
            startedAt: new Date(),
            finishedAt: null,
            failure,
          },
        ],
      });
      const task = (await store.loadRun('r1'))?.tasks[1];
      expect(task?.failure).toEqual(failure);
      expect(task?.result?.steps[0]).toMatchObject({ name: text, outputs: { k: text } });
      expect((await store.attempts('r1', 'a:y'))[0]?.failure).toEqual(failure);
    });

    test('events come in order after a sequence number, per run and across runs', async () => {
      const ids = await store.commit('r2', { events: [event('r2', 1), event('r2', 2)] });
      expect((await store.events('r1', 1)).map((e) => e.seq)).toEqual([2]);
      const all = await store.allEvents(0);
      expect(all.map((e) => `${e.runId}:${e.seq}`)).toEqual(['r1:1', 'r1:2', 'r2:1', 'r2:2']);
      expect((await store.allEvents(all[1]!.id)).map((e) => e.runId)).toEqual(['r2', 'r2']);
      // The commit tells the global id of each event it wrote, as the log has them.
      expect([...ids.entries()]).toEqual(
        all.filter((e) => e.runId === 'r2').map((e) => [e.seq, e.id]),
      );
    });

    test('lists runs newest first with filters and a cursor', async () => {
      for (let i = 0; i < 5; i++) {
        await store.createRun({
          id: `p${i}`,
          name: 'paged',
          workflow: {},
          plan,
          labels: { env: i % 2 ? 'prod' : 'dev' },
        });
      }
      const first = await store.listRuns({ name: 'paged', limit: 2 });
      expect(first.items.map((r) => r.id)).toEqual(['p4', 'p3']);
      const second = await store.listRuns({ name: 'paged', limit: 2, cursor: first.nextCursor! });
      expect(second.items.map((r) => r.id)).toEqual(['p2', 'p1']);
      const third = await store.listRuns({ name: 'paged', limit: 2, cursor: second.nextCursor! });
      expect(third).toMatchObject({ items: [{ id: 'p0' }], nextCursor: null });
      expect(
        (await store.listRuns({ label: { key: 'env', value: 'prod' } })).items.map((r) => r.id),
      ).toEqual(['p3', 'p1']);
      expect((await store.listRuns({ status: 'running' })).items.map((r) => r.id)).toEqual(['r1']);
      await expect(store.listRuns({ cursor: 'nonsense' })).rejects.toThrow(/cursor/);
    });

    test('a lease fences out a stale driver', async () => {
      const token = await store.acquireLease('r2', 'replica-a', 60_000);
      expect(token).toBeGreaterThan(0);
      expect(await store.acquireLease('r2', 'replica-b', 60_000)).toBeUndefined();
      await store.commit(
        'r2',
        { run: { status: 'running' } },
        { owner: 'replica-a', token: token! },
      );
      // The lease expires; b takes over, and a's next commit is refused.
      const expired = await store.acquireLease('r3-missing', 'x', 1);
      expect(expired).toBeUndefined();
      await store.releaseLease('r2', { owner: 'replica-a', token: token! });
      const tokenB = await store.acquireLease('r2', 'replica-b', 60_000);
      expect(tokenB).toBe(token! + 1);
      await expect(
        store.commit('r2', { run: { status: 'failed' } }, { owner: 'replica-a', token: token! }),
      ).rejects.toBeInstanceOf(LeaseLostError);
      expect(await store.renewLease('r2', { owner: 'replica-b', token: tokenB! }, 1000)).toBe(true);
      expect((await store.getRun('r2'))?.status).toBe('running');
      expect(await store.runStatus('r2')).toBe('running');
      expect(await store.runStatus('no-such-run')).toBeUndefined();
    });
  });
}
