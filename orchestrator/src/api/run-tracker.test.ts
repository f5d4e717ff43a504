import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { WorkflowSchema } from '../../../schemas/src/workflow.ts';
import { planWorkflow } from '../plan/index.ts';
import type {
  EventType,
  OrchestratorEventMap,
  RunEvent,
  RunSnapshot,
  TaskStatus,
} from '../engine/types.ts';
import { RunTracker, queueKind, type QueueKind } from './run-tracker.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');

/** A diamond a → b, c → d of one task each, on the orchestrator queue. */
function diamondSnapshot(
  tasks: Record<string, TaskStatus> = {},
  extra: { status?: RunSnapshot['run']['status']; lastSeq?: number; startedAt?: number } = {},
): RunSnapshot {
  const op = (id: string, depends_on: string[] = []) => ({
    id,
    type: 'update' as const,
    target: 'cluster' as const,
    items: ['x'],
    depends_on,
    steps: [{ name: 's', type: 'echo' as const, params: { message: id } }],
  });
  return snapshotOf(
    { name: 'diamond', operations: [op('a'), op('b', ['a']), op('c', ['a']), op('d', ['b', 'c'])] },
    tasks,
    extra,
  );
}

/** A run of `input` with the given task statuses, as the store would load it. */
function snapshotOf(
  input: v.InferInput<typeof WorkflowSchema>,
  tasks: Record<string, TaskStatus> = {},
  extra: { status?: RunSnapshot['run']['status']; lastSeq?: number; startedAt?: number } = {},
): RunSnapshot {
  const workflow = v.parse(WorkflowSchema, input);
  const plan = planWorkflow(workflow);
  return {
    run: {
      id: 'r1',
      name: workflow.name,
      status: extra.status ?? 'running',
      plan,
      workflow,
      labels: {},
      idempotencyKey: null,
      error: null,
      checkpoint: 0,
      createdAt: new Date(T0),
      updatedAt: new Date(T0),
      startedAt: extra.startedAt === undefined ? new Date(T0) : new Date(extra.startedAt),
      finishedAt: null,
    },
    operations: [],
    tasks: plan.tasks.map((t, position) => ({
      id: t.id,
      operationId: t.operation,
      position,
      queue: t.queue,
      status: tasks[t.id] ?? 'pending',
      attempts: 0,
      attemptBase: 0,
      notBefore: null,
      finishedSeq: null,
      startedAt: null,
      finishedAt: tasks[t.id] === 'succeeded' ? new Date(T0 + 1000) : null,
      result: null,
      failure: null,
      compensated: false,
    })),
    checkpoints: [],
    lastSeq: extra.lastSeq ?? 0,
  };
}

function events() {
  let seq = 0;
  return <TType extends EventType>(
    type: TType,
    atMs: number,
    data: OrchestratorEventMap[TType],
    taskId: string | null = null,
  ): RunEvent =>
    ({
      id: seq + 1,
      runId: 'r1',
      seq: ++seq,
      type,
      at: new Date(T0 + atMs),
      operationId: taskId?.split(':')[0] ?? null,
      taskId,
      data,
    }) as RunEvent;
}

function tracked(snapshot: RunSnapshot) {
  const waits: Array<[QueueKind, number]> = [];
  const ended: Array<[string, number]> = [];
  const tracker = new RunTracker(async () => snapshot, {
    onWait: (kind, s) => waits.push([kind, s]),
    onRunEnded: (status, s) => ended.push([status, s]),
  });
  return { tracker, waits, ended };
}

describe('RunTracker', () => {
  test('a run seen from its start: depth follows the DAG, waits run from readiness to start', async () => {
    // The snapshot is later than the first events; seen from seq 1, the tracker replays them all.
    const { tracker, waits, ended } = tracked(diamondSnapshot({ 'a:x': 'succeeded' }));
    const e = events();
    tracker.observe(e('run:started', 0, { resumed: false }));
    tracker.observe(e('task:started', 200, { attempt: 1, queue: 'orchestrator' }, 'a:x'));
    await tracker.settled();
    expect(waits).toEqual([['orchestrator', 0.2]]);
    expect(tracker.depth(T0 + 300)).toEqual({ server: 0, provider: 0, orchestrator: 0 });

    tracker.observe(e('task:succeeded', 1000, { attempt: 1, durationMs: 800 }, 'a:x'));
    expect(tracker.depth(T0 + 1000).orchestrator).toBe(2);
    tracker.observe(e('task:started', 1500, { attempt: 1, queue: 'orchestrator' }, 'b:x'));
    expect(tracker.depth(T0 + 1500).orchestrator).toBe(1);
    tracker.observe(e('run:paused', 1600, {}));
    expect(tracker.depth(T0 + 1600).orchestrator).toBe(0);
    tracker.observe(e('run:resumed', 2000, {}));
    tracker.observe(e('task:started', 2500, { attempt: 1, queue: 'orchestrator' }, 'c:x'));
    expect(waits.slice(1)).toEqual([
      ['orchestrator', 0.5],
      ['orchestrator', 1.5],
    ]);
    // d waits for both b and c.
    tracker.observe(e('task:succeeded', 3000, { attempt: 1, durationMs: 1 }, 'b:x'));
    expect(tracker.depth(T0 + 3000).orchestrator).toBe(0);
    tracker.observe(e('task:succeeded', 3200, { attempt: 1, durationMs: 1 }, 'c:x'));
    expect(tracker.depth(T0 + 3200).orchestrator).toBe(1);
    expect(tracker.statuses()).toEqual(new Map([['running', 1]]));

    tracker.observe(e('task:started', 3300, { attempt: 1, queue: 'orchestrator' }, 'd:x'));
    tracker.observe(e('task:succeeded', 3400, { attempt: 1, durationMs: 1 }, 'd:x'));
    tracker.observe(e('run:succeeded', 3500, {}));
    expect(ended).toEqual([['succeeded', 3.5]]);
    expect(tracker.size).toBe(0);
  });

  test('a task waiting out its retry delay is not queued until the delay is over', async () => {
    const { tracker, waits } = tracked(diamondSnapshot());
    const e = events();
    tracker.observe(e('run:started', 0, { resumed: false }));
    await tracker.settled();
    tracker.observe(e('task:started', 0, { attempt: 1, queue: 'orchestrator' }, 'a:x'));
    tracker.observe(
      e(
        'task:failed',
        100,
        { attempt: 1, final: false, retryInMs: 5000, failure: { type: 'exit-code', message: 'x' } },
        'a:x',
      ),
    );
    expect(tracker.depth(T0 + 4000).orchestrator).toBe(0);
    expect(tracker.depth(T0 + 5100).orchestrator).toBe(1);
    tracker.observe(e('task:started', 5600, { attempt: 2, queue: 'orchestrator' }, 'a:x'));
    expect(waits.at(-1)).toEqual(['orchestrator', 0.5]);
    // A final failure releases the dependents (they will be skipped, and are not queued then).
    tracker.observe(
      e(
        'task:failed',
        5700,
        { attempt: 2, final: true, failure: { type: 'exit-code', message: 'x' } },
        'a:x',
      ),
    );
    tracker.observe(e('task:skipped', 5700, { reason: 'a failed' }, 'b:x'));
    tracker.observe(e('task:skipped', 5700, { reason: 'a failed' }, 'c:x'));
    expect(tracker.depth(T0 + 5800).orchestrator).toBe(1);
  });

  test('a run first seen mid-way starts from its snapshot and skips events it already reflects', async () => {
    const snapshot = diamondSnapshot({ 'a:x': 'succeeded', 'b:x': 'running' }, { lastSeq: 6 });
    const { tracker, waits } = tracked(snapshot);
    const e = events();
    for (let i = 0; i < 5; i++) e('task:output', 0, { stream: 'info', line: '' }, 'a:x');
    // seq 6 is in the snapshot already; 7 is new.
    tracker.observe(e('task:started', 1500, { attempt: 1, queue: 'orchestrator' }, 'b:x'));
    tracker.observe(e('task:started', 2500, { attempt: 1, queue: 'orchestrator' }, 'c:x'));
    await tracker.settled();
    // c became ready when a finished (T0 + 1000), and started at T0 + 2500.
    expect(waits).toEqual([['orchestrator', 1.5]]);
    expect(tracker.depth(T0 + 3000).orchestrator).toBe(0);
  });

  test('ended runs are not tracked, and a retry reloads the run', async () => {
    let snapshot = diamondSnapshot({}, { status: 'failed', lastSeq: 10 });
    const tracker = new RunTracker(async () => snapshot);
    const e = events();
    for (let i = 0; i < 10; i++) e('task:output', 0, { stream: 'info', line: '' }, 'a:x');
    tracker.observe(e('run:failed', 0, { error: 'x' }));
    tracker.observe(e('task:compensated', 0, {}, 'a:x'));
    await tracker.settled();
    expect(tracker.size).toBe(0);
    snapshot = diamondSnapshot({}, { status: 'running', lastSeq: 13 });
    tracker.observe(e('run:retrying', 0, { tasks: 4 }));
    await tracker.settled();
    expect(tracker.size).toBe(1);
    expect(tracker.depth(T0 + 1).orchestrator).toBe(1);
  });

  test('queue kinds are bounded: never a server name', () => {
    expect(queueKind('server:web-1')).toBe('server');
    expect(queueKind('provider:aws')).toBe('provider');
    expect(queueKind('orchestrator')).toBe('orchestrator');
  });
  test('a barrier: the waiting operation is ready only when every task it waits for is done', async () => {
    const fleet = (id: string, depends_on: string[] = []) => ({
      id,
      type: 'update' as const,
      target: 'cluster' as const,
      items: ['s1', 's2', 's3'],
      depends_on,
      steps: [{ name: 's', type: 'echo' as const, params: { message: id } }],
    });
    const snapshot = snapshotOf({ name: 'fleet', operations: [fleet('a'), fleet('b', ['a'])] });
    expect(snapshot.run.plan.barriers).toHaveLength(1);
    const { tracker, waits } = tracked(snapshot);
    const e = events();
    tracker.observe(e('run:started', 0, { resumed: false }));
    await tracker.settled();
    expect(tracker.depth(T0)).toEqual({ server: 0, provider: 0, orchestrator: 3 });
    for (const item of ['s1', 's2', 's3']) {
      tracker.observe(e('task:started', 10, { attempt: 1, queue: 'orchestrator' }, `a:${item}`));
    }
    for (const [i, item] of ['s1', 's2', 's3'].entries()) {
      tracker.observe(
        e('task:succeeded', 100 * (i + 1), { attempt: 1, durationMs: 1 }, `a:${item}`),
      );
      // b's tasks wait until the last of a is done.
      expect(tracker.depth(T0 + 1000).orchestrator).toBe(i < 2 ? 0 : 3);
    }
    tracker.observe(e('task:started', 500, { attempt: 1, queue: 'orchestrator' }, 'b:s1'));
    expect(waits.at(-1)).toEqual(['orchestrator', 0.2]);
  });
});
