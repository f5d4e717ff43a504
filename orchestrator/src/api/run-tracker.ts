/**
 * Follows the live runs from their events, to answer what the events alone do not say: how many
 * tasks wait in each kind of queue, how long a task waited before it started, how long a run took.
 *
 * A run is tracked from its first event: its snapshot is loaded once (events arriving meanwhile
 * are held, and those the snapshot already reflects are skipped by `seq`), then events keep it
 * current. A retry reloads it, as it reopens many tasks at once. A run that ends is dropped, so
 * memory holds only live runs.
 *
 * A task **waits** from the moment it may start as far as the DAG is concerned (every dependency
 * finished, or its retry delay over) until it starts; the wait covers rollout batches, approvals,
 * pauses and concurrency limits. The **queue depth** counts such tasks in running runs.
 *
 * @module
 */
import type { PlannedTask } from '../plan/types.ts';
import type { Run, RunEvent, RunSnapshot, RunStatus, TaskStatus } from '../engine/types.ts';
import { FINAL_RUN_STATUSES, FINISHED_TASK_STATUSES } from '../engine/types.ts';

/** A bounded label for a queue: `server`, `provider` or `orchestrator`, never its name. */
export type QueueKind = 'server' | 'provider' | 'orchestrator';

/** The kind of a queue name. */
export function queueKind(queue: string): QueueKind {
  if (queue.startsWith('server:')) return 'server';
  if (queue.startsWith('provider:')) return 'provider';
  return 'orchestrator';
}

/** What the tracker reports as runs move. */
export interface RunTrackerHooks {
  /** A task started after waiting `seconds` in a queue of `kind`. */
  onWait?(kind: QueueKind, seconds: number): void;
  /** A run reached a final status after `seconds` since it started. */
  onRunEnded?(status: RunStatus, seconds: number): void;
}

interface TaskTrack {
  readonly kind: QueueKind;
  readonly operation: string;
  status: TaskStatus;
  /** Unfinished dependencies. */
  waiting: number;
  /** When it became startable (ms), once `waiting` is 0. */
  readyAt: number;
  readonly dependents: string[];
}

/** An operation, for its barriers: its tasks wait for every task of another. */
interface OperationTrack {
  readonly tasks: string[];
  /** Tasks not in a final state. */
  unfinished: number;
  /** When its last task finished (ms), once `unfinished` is 0. */
  finishedAt: number;
  /** Operations behind a barrier on this one. */
  readonly waiters: OperationTrack[];
}

interface RunTrack {
  status: RunStatus;
  startedAt: number | null;
  lastSeq: number;
  readonly tasks: Map<string, TaskTrack>;
  readonly operations: Map<string, OperationTrack>;
}

const RUN_STATUS_OF: Partial<Record<RunEvent['type'], RunStatus>> = {
  'run:started': 'running',
  'run:resumed': 'running',
  'run:paused': 'paused',
  'run:cancelling': 'cancelling',
  'run:rolling_back': 'rolling_back',
  'run:succeeded': 'succeeded',
  'run:failed': 'failed',
  'run:cancelled': 'cancelled',
  'run:rolled_back': 'rolled_back',
};

/** Tracks live runs; see the module comment. */
export class RunTracker {
  private readonly runs = new Map<string, RunTrack>();
  /** Runs whose snapshot is loading, with the events that arrived meanwhile. */
  private readonly loading = new Map<string, RunEvent[]>();

  /**
   * @param loadRun Reads a run's snapshot, for a run first seen mid-way.
   * @param hooks What to report.
   * @param getRun Reads a run without its tasks, enough for a run seen from its first event.
   */
  constructor(
    private readonly loadRun: (runId: string) => Promise<RunSnapshot | undefined>,
    private readonly hooks: RunTrackerHooks = {},
    private readonly getRun?: (runId: string) => Promise<Run | undefined>,
  ) {}

  /** Takes one committed event, in order per run. */
  observe(event: RunEvent): void {
    const held = this.loading.get(event.runId);
    if (held) {
      held.push(event);
      return;
    }
    const run = this.runs.get(event.runId);
    if (run) {
      this.apply(event.runId, run, event);
      return;
    }
    // An ended run's late events (a retry reopening it comes through `run:retrying`) need no load.
    if (FINAL_RUN_STATUSES.has(RUN_STATUS_OF[event.type] as RunStatus)) return;
    this.load(event.runId, [event]);
  }

  /** Resolves once no snapshot is loading (for tests and shutdown). */
  async settled(): Promise<void> {
    while (this.loading.size > 0) await new Promise((r) => setTimeout(r, 5));
  }

  /** Tasks waiting to start in running runs, by queue kind, at `now` (ms). */
  depth(now: number = Date.now()): Record<QueueKind, number> {
    const depth: Record<QueueKind, number> = { server: 0, provider: 0, orchestrator: 0 };
    for (const run of this.runs.values()) {
      if (run.status !== 'running') continue;
      for (const task of run.tasks.values()) {
        if (task.status === 'pending' && task.waiting === 0 && task.readyAt <= now) {
          depth[task.kind]++;
        }
      }
    }
    return depth;
  }

  /** Tracked runs by status. */
  statuses(): Map<RunStatus, number> {
    const counts = new Map<RunStatus, number>();
    for (const run of this.runs.values()) counts.set(run.status, (counts.get(run.status) ?? 0) + 1);
    return counts;
  }

  /** How many runs are tracked (for tests: memory stays bounded). */
  get size(): number {
    return this.runs.size + this.loading.size;
  }

  private load(runId: string, held: RunEvent[]): void {
    this.runs.delete(runId);
    this.loading.set(runId, held);
    // Seen from its first event: the plan alone is its starting state, and every event since is
    // at hand, so replaying them all is exact (a snapshot may be later than some of them).
    const fromStart = held[0]?.seq === 1;
    const read: Promise<RunSnapshot | undefined> =
      fromStart && this.getRun
        ? this.getRun(runId).then((run) => (run ? fresh(run) : undefined))
        : this.loadRun(runId).then((s) => (s && fromStart ? fresh(s.run) : s));
    read.then(
      (snapshot) => {
        const events = this.loading.get(runId) ?? [];
        this.loading.delete(runId);
        if (!snapshot) return;
        const run = build(snapshot);
        if (FINAL_RUN_STATUSES.has(run.status)) return;
        this.runs.set(runId, run);
        for (const event of events) {
          if (this.runs.get(runId) !== run) break;
          this.apply(runId, run, event);
        }
      },
      () => this.loading.delete(runId),
    );
  }

  private apply(runId: string, run: RunTrack, event: RunEvent): void {
    if (event.seq <= run.lastSeq) return;
    run.lastSeq = event.seq;
    const at = event.at.getTime();
    if (event.type === 'run:retrying') {
      // Many tasks reopen at once: read them back rather than replaying the engine's rules.
      this.load(runId, []);
      return;
    }
    const status = RUN_STATUS_OF[event.type];
    if (status) {
      if (event.type === 'run:started' && run.startedAt === null) {
        // Tasks without dependencies become startable when the run starts.
        run.startedAt = at;
        for (const task of run.tasks.values()) {
          if (task.waiting === 0) task.readyAt = Math.max(task.readyAt, at);
        }
      }
      run.status = status;
      if (FINAL_RUN_STATUSES.has(status)) {
        this.runs.delete(runId);
        if (run.startedAt !== null) {
          this.hooks.onRunEnded?.(status, Math.max(0, at - run.startedAt) / 1000);
        }
      }
      return;
    }
    const task = event.taskId === null ? undefined : run.tasks.get(event.taskId);
    if (!task) return;
    switch (event.type) {
      case 'task:started':
        if (task.status === 'pending' && task.waiting === 0) {
          this.hooks.onWait?.(task.kind, Math.max(0, at - task.readyAt) / 1000);
        }
        task.status = 'running';
        break;
      case 'task:failed': {
        const data = (event as RunEvent<'task:failed'>).data;
        if (data.final) {
          this.finish(run, task, 'failed', at);
        } else {
          task.status = 'pending';
          task.readyAt = at + (data.retryInMs ?? 0);
        }
        break;
      }
      case 'task:succeeded':
        this.finish(run, task, 'succeeded', at);
        break;
      case 'task:skipped':
        this.finish(run, task, 'skipped', at);
        break;
      case 'task:cancelled':
        this.finish(run, task, 'cancelled', at);
        break;
      case 'task:compensated':
        task.status = 'rolled_back';
        break;
      default:
        break;
    }
  }

  private finish(run: RunTrack, task: TaskTrack, status: TaskStatus, at: number): void {
    const wasFinished = FINISHED_TASK_STATUSES.has(task.status);
    task.status = status;
    if (wasFinished) return;
    for (const id of task.dependents) release(run, id, at);
    const operation = run.operations.get(task.operation);
    if (operation && --operation.unfinished === 0) {
      operation.finishedAt = at;
      for (const waiter of operation.waiters) for (const id of waiter.tasks) release(run, id, at);
    }
  }
}

/** One dependency of task `id` finished at `at`. */
function release(run: RunTrack, id: string, at: number): void {
  const dependent = run.tasks.get(id);
  if (!dependent || dependent.waiting === 0) return;
  dependent.waiting--;
  if (dependent.waiting === 0) dependent.readyAt = Math.max(dependent.readyAt, at);
}

/** The run as it was created: every task pending, no event yet. */
function fresh(run: Run): RunSnapshot {
  return {
    run: { ...run, status: 'pending', startedAt: null },
    operations: [],
    tasks: run.plan.tasks.map((t, position) => ({
      id: t.id,
      operationId: t.operation,
      position,
      queue: t.queue,
      status: 'pending',
      attempts: 0,
      attemptBase: 0,
      notBefore: null,
      finishedSeq: null,
      startedAt: null,
      finishedAt: null,
      result: null,
      failure: null,
      compensated: false,
    })),
    checkpoints: [],
    lastSeq: 0,
  };
}

function build(snapshot: RunSnapshot): RunTrack {
  const { run } = snapshot;
  const byId = new Map<string, PlannedTask>(run.plan.tasks.map((t) => [t.id, t]));
  const states = new Map(snapshot.tasks.map((t) => [t.id, t]));
  const startedAt = run.startedAt?.getTime() ?? null;
  const tasks = new Map<string, TaskTrack>();
  const operations = new Map<string, OperationTrack>();
  for (const planned of byId.values()) {
    const state = states.get(planned.id);
    let operation = operations.get(planned.operation);
    if (!operation) {
      operation = { tasks: [], unfinished: 0, finishedAt: 0, waiters: [] };
      operations.set(planned.operation, operation);
    }
    operation.tasks.push(planned.id);
    if (!FINISHED_TASK_STATUSES.has(state?.status ?? 'pending')) operation.unfinished++;
    else operation.finishedAt = Math.max(operation.finishedAt, state?.finishedAt?.getTime() ?? 0);
    tasks.set(planned.id, {
      kind: queueKind(planned.queue),
      operation: planned.operation,
      status: state?.status ?? 'pending',
      waiting: 0,
      readyAt: Math.max(startedAt ?? 0, state?.notBefore?.getTime() ?? 0),
      dependents: [],
    });
  }
  const seen = new Set<string>();
  for (const edge of run.plan.edges) {
    const key = `${edge.from}\u0000${edge.to}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const from = tasks.get(edge.from);
    const to = tasks.get(edge.to);
    if (!from || !to) continue;
    from.dependents.push(edge.to);
    if (!FINISHED_TASK_STATUSES.has(from.status)) {
      to.waiting++;
    } else {
      const finishedAt = states.get(edge.from)?.finishedAt?.getTime() ?? 0;
      to.readyAt = Math.max(to.readyAt, finishedAt);
    }
  }
  for (const barrier of run.plan.barriers ?? []) {
    const from = operations.get(barrier.from);
    const to = operations.get(barrier.to);
    if (!from || !to) continue;
    from.waiters.push(to);
    for (const id of to.tasks) {
      const waiter = tasks.get(id)!;
      if (from.unfinished > 0) waiter.waiting++;
      else waiter.readyAt = Math.max(waiter.readyAt, from.finishedAt);
    }
  }
  return { status: run.status, startedAt, lastSeq: snapshot.lastSeq, tasks, operations };
}
