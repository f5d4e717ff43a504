/**
 * How the engine hands a task to whatever runs it: the in-process executor today, an agent over
 * WebSocket tomorrow, through this one interface.
 *
 * @module
 */
import type { PlannedTask } from '../plan/types.ts';
import type { TaskContext } from '../templates/context.ts';
import type { SecretTree } from '../secrets/types.ts';
import type { StepRecord, TaskFailure, TaskResult } from './types.ts';

/** One attempt at a task, or its compensation, sent to the task's queue. */
export interface TaskAssignment {
  readonly runId: string;
  readonly task: PlannedTask;
  readonly attempt: number;
  readonly mode: 'execute' | 'compensate';
  /** For `compensate`: what the attempt being undone left behind. */
  readonly previous?: TaskResult;
  /** Milliseconds before the attempt is aborted (the operation's timeout). */
  readonly timeoutMs: number;
  /** The server the task runs on or acts upon, from the workflow's inventory. */
  readonly server?: AssignedServer;
  /** What the task's templates read besides its own steps: inputs, secrets source, outputs. */
  readonly context?: TaskContext;
  /**
   * The values of the run's secrets, attached in memory at dispatch by the orchestrator (see
   * `secrets/dispatch.ts`); never stored, logged or sent anywhere but to the task's executor.
   */
  readonly secrets?: SecretTree;
}

/** What an executor knows of a task's server. */
export interface AssignedServer {
  readonly name: string;
  readonly provider: string;
  readonly address?: string;
  readonly labels: Readonly<Record<string, string>>;
  /** How to reach the server over SSH (`provider: "ssh"`). */
  readonly ssh?: { readonly user: string; readonly port: number; readonly key_file?: string };
}

/** What came of an assignment. */
export interface TaskReport {
  readonly status: 'succeeded' | 'failed';
  readonly result: TaskResult;
  readonly failure?: TaskFailure;
}

/** Callbacks from a running assignment. */
export interface DispatchHooks {
  /** Aborted on terminate; the executor stops and reports a failure of type `cancelled`. */
  readonly signal: AbortSignal;
  output(stream: 'stdout' | 'stderr' | 'info', line: string, step?: string): void;
  /** A step finished: its record is kept so a rollback can undo it even after a crash. */
  step(record: StepRecord): void;
}

/** Runs assignments on their queues. */
export interface Dispatcher {
  dispatch(assignment: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport>;
  /**
   * Re-attaches to an attempt a previous driver of the run dispatched (the run was taken over
   * after its driver stopped): resolves with its report once it ends, or with `undefined` at
   * once when this dispatcher cannot find it — the attempt then counts as interrupted.
   */
  reattach?(assignment: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport | undefined>;
}
