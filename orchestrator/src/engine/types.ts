/**
 * Domain types of execution.
 *
 * Terminology:
 * - A **run** is one execution of a planned workflow. Its state is the engine's; the store keeps it.
 * - A **task** runs in **attempts**. An attempt's intent is written before the side effect and its
 *   result right after, so a crash is always followed by a correct decision: a finished task never
 *   runs again; one caught mid-flight counts as an interrupted attempt and is retried by its policy.
 * - **Compensation** undoes a task: its steps' rollback actions in reverse, then its own
 *   compensation steps. A rollback compensates tasks in reverse order of completion, which is a
 *   reverse topological order.
 * - A **checkpoint** records the tasks finished so far, every `checkpoint_interval` operations.
 *
 * @module
 */
import type { Plan } from '../plan/types.ts';

/**
 * Run states.
 *
 * `pending` → `running` ⇄ `paused`; `running` → `succeeded` | `failed`; `cancelling` → `cancelled`;
 * `rolling_back` → `rolled_back` (or `failed` when a compensation fails).
 */
export const RUN_STATUSES = [
  'pending',
  'running',
  'paused',
  'succeeded',
  'failed',
  'cancelling',
  'cancelled',
  'rolling_back',
  'rolled_back',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** What can be done to a run once it exists. */
export const RUN_ACTIONS = ['pause', 'resume', 'cancel', 'terminate', 'retry', 'rollback'] as const;
/** An action on a run. */
export type RunAction = (typeof RUN_ACTIONS)[number];

/** States a run ends in (until a retry or rollback reopens it). */
export const FINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set([
  'succeeded',
  'failed',
  'cancelled',
  'rolled_back',
]);

/**
 * Task states.
 *
 * `pending` (waiting for dependencies or a retry's delay) → `running` → `succeeded` | `failed`;
 * `skipped` when a hard dependency failed or the run stopped first; `cancelled` when terminated;
 * `rolled_back` once compensated.
 */
export const TASK_STATUSES = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
  'rolled_back',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** States a task does not leave by itself: all but `pending` and `running`. */
export const FINISHED_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set([
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
  'rolled_back',
]);

/** Operation states: derived from their tasks, stored for queries. */
export type OperationStatus =
  'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'rolled_back';

/** Why an attempt failed, as data: the engine reads it to decide on a retry. */
export interface TaskFailure {
  /** `exit-code`, `timeout`, `interrupted`, `http-status`, … or a custom handler's type. */
  readonly type: string;
  readonly message: string;
  readonly nonRetryable?: boolean;
  /** The step that failed, by name. */
  readonly step?: string;
  readonly details?: Record<string, unknown>;
}

/** What a finished step left behind: needed to compensate it and to read its outputs. */
export interface StepRecord {
  readonly index: number;
  readonly name: string;
  readonly status: 'succeeded' | 'failed' | 'ignored';
  readonly outputs?: Readonly<Record<string, string>>;
  readonly rollbackData?: unknown;
}

/** A task's result: its step records, in order. */
export interface TaskResult {
  readonly steps: readonly StepRecord[];
}

/** A run as the store keeps it. */
export interface Run {
  readonly id: string;
  readonly name: string;
  readonly status: RunStatus;
  readonly plan: Plan;
  readonly workflow: unknown;
  readonly labels: Readonly<Record<string, string>>;
  readonly idempotencyKey: string | null;
  readonly error: string | null;
  readonly checkpoint: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

/** A task's state as the store keeps it. */
export interface TaskState {
  readonly id: string;
  readonly operationId: string;
  readonly position: number;
  readonly queue: string;
  readonly status: TaskStatus;
  readonly attempts: number;
  /** Attempts made before the last retry of the run: the retry budget starts there. */
  readonly attemptBase: number;
  readonly notBefore: Date | null;
  readonly finishedSeq: number | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly result: TaskResult | null;
  readonly failure: TaskFailure | null;
  readonly compensated: boolean;
}

/** An operation's state. */
export interface OperationState {
  readonly id: string;
  readonly position: number;
  readonly level: number;
  readonly status: OperationStatus;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

/**
 * A checkpoint: what succeeded since the one before. What had succeeded by checkpoint N is the
 * union of checkpoints 1..N (checkpoints written before 2026-12-03 list everything so far, which
 * the union reads the same).
 */
export interface Checkpoint {
  readonly number: number;
  readonly at: Date;
  readonly eventSeq: number;
  readonly completedOperations: readonly string[];
  readonly completedTasks: readonly string[];
}

/** Every event type, with its payload: the one map that streams, logs and metrics read. */
export interface OrchestratorEventMap {
  'run:created': { name: string; operations: number; tasks: number };
  'run:started': { resumed: boolean };
  'run:paused': Record<string, never>;
  'run:resumed': Record<string, never>;
  'run:succeeded': Record<string, never>;
  'run:failed': { error: string };
  'run:cancelling': { force: boolean };
  'run:cancelled': { force: boolean };
  'run:rolling_back': { reason: string; toCheckpoint?: number };
  'run:rolled_back': { compensated: number };
  'run:retrying': { operation?: string; tasks: number };
  'operation:started': Record<string, never>;
  'operation:succeeded': Record<string, never>;
  'operation:failed': { failed: number; tolerated: number };
  'operation:skipped': Record<string, never>;
  'operation:awaiting_approval': { canaries: number };
  'task:started': { attempt: number; queue: string };
  'task:output': { stream: 'stdout' | 'stderr' | 'info'; line: string; step?: string };
  'task:step': StepRecord & { attempt: number };
  'task:succeeded': { attempt: number; durationMs: number };
  'task:failed': { attempt: number; failure: TaskFailure; final: boolean; retryInMs?: number };
  'task:interrupted': { attempt: number };
  /** A driver taking the run over found the attempt still running (or done) on its agent. */
  'task:reattached': { attempt: number };
  'task:skipped': { reason: string };
  'task:cancelled': Record<string, never>;
  'task:compensating': Record<string, never>;
  'task:compensated': Record<string, never>;
  'task:compensation_failed': { failure: TaskFailure };
  'checkpoint:taken': { number: number; operations: number };
}
export type EventType = keyof OrchestratorEventMap;

/** An event as written to the log. */
export interface RunEvent<TType extends EventType = EventType> {
  /** Global order across runs. */
  readonly id: number;
  readonly runId: string;
  /** Order within the run, from 1, without gaps. */
  readonly seq: number;
  readonly type: TType;
  readonly at: Date;
  readonly operationId: string | null;
  readonly taskId: string | null;
  readonly data: OrchestratorEventMap[TType];
}

/** An event about to be written: the store assigns `id`. */
export type NewRunEvent = Omit<RunEvent, 'id'>;

/** The full mutable state of a task, as the engine writes it: all but where the task belongs. */
export type TaskWrite = Omit<TaskState, 'operationId' | 'position' | 'queue'>;

/** An attempt's intent (`running`) or result. */
export interface AttemptWrite {
  readonly taskId: string;
  readonly attempt: number;
  readonly status: 'running' | 'succeeded' | 'failed' | 'interrupted' | 'cancelled';
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly failure: TaskFailure | null;
}

/** The run-level fields a batch may change. */
export interface RunWrite {
  readonly status?: RunStatus;
  readonly error?: string | null;
  readonly startedAt?: Date | null;
  readonly finishedAt?: Date | null;
  readonly checkpoint?: number;
}

/** One transaction's worth of changes to a run. */
export interface Batch {
  readonly run?: RunWrite;
  readonly operations?: readonly OperationState[];
  readonly tasks?: readonly TaskWrite[];
  readonly attempts?: readonly AttemptWrite[];
  readonly events?: readonly NewRunEvent[];
  readonly checkpoint?: Checkpoint;
}

/** Proof that the caller still drives the run: commits with a stale token are refused. */
export interface Fence {
  readonly owner: string;
  readonly token: number;
}

/**
 * What a status shows of a run: the run without its workflow and plan, its operations, and how
 * many of each operation's tasks are in each state (not the tasks themselves).
 */
export interface RunOverview {
  readonly run: Omit<Run, 'workflow' | 'plan'>;
  readonly operations: readonly OperationState[];
  readonly taskCounts: ReadonlyArray<{
    readonly operationId: string;
    readonly status: TaskStatus;
    readonly count: number;
  }>;
}

/** Everything the engine needs to resume a run. */
export interface RunSnapshot {
  readonly run: Run;
  readonly operations: readonly OperationState[];
  readonly tasks: readonly TaskState[];
  readonly checkpoints: readonly Checkpoint[];
  /** The last event's sequence number (0 when none). */
  readonly lastSeq: number;
}
