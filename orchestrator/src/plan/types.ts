/**
 * What planning produces and the engine runs.
 *
 * Terminology:
 * - An **operation** is what the user wrote (`install-base`); planning expands it over its items and
 *   servers into **tasks**, one per (item, server): `install-base:containerd@web-1`.
 * - A task runs on one **queue**: `server:NAME` (steps on that server, through its agent or the local
 *   executor), `provider:NAME` (create/delete a server through its provider's API) or `orchestrator`
 *   (cluster-level work with no server of its own).
 * - An **edge** orders two tasks. `hard`: the target waits and is skipped if the source fails; `soft`:
 *   the target waits and runs anyway; `optional` edges are only kept when both ends are planned, and
 *   then behave as `soft`.
 * - A **barrier** makes every task of one operation wait for every task of another, with an edge's
 *   `type` and `reason`: the whole-operation dependency (`depends_on`, or `dependencies` between
 *   two operations) that would otherwise be |from| × |to| edges. 1,000 servers waiting for 1,000
 *   servers are one barrier, not a million edges. The planner writes edges while they are fewer.
 * - A **level** is an operation's depth in the operation DAG: level 0 has no dependencies.
 *
 * @module
 */
import type {
  HealthCheck,
  OnFailure,
  RetryPolicy,
  Rollout,
  Step,
  WorkflowType,
} from '../../../schemas/src/workflow.ts';

/** Where a task runs. */
export type QueueName = `server:${string}` | `provider:${string}` | 'orchestrator';

/** A provider action on a server, for `target: "server"` operations of type create/delete/check. */
export type ProviderAction = 'create' | 'delete' | 'status';

/** One unit of execution: an operation applied to one item on one server. */
export interface PlannedTask {
  /** `operation:item@server`, or `operation:item` for tasks with no server. Unique in a plan. */
  readonly id: string;
  readonly operation: string;
  /** The server, taskserv or cluster name the task is about. */
  readonly item: string;
  /** The server the task runs on or acts upon, if any. */
  readonly server?: string;
  readonly queue: QueueName;
  /** For provider tasks: what to ask the provider to do. */
  readonly action?: ProviderAction;
  readonly provider?: string;
  /** Steps run in order (for provider tasks: after the provider action). */
  readonly steps: readonly Step[];
  /**
   * Steps that undo the task as a whole (a taskserv's `uninstall`), run on rollback after the
   * steps' own `rollback` actions. Empty when only per-step rollbacks apply.
   */
  readonly compensation: readonly Step[];
  /** Run after the steps; the task fails when it never passes. */
  readonly health_check?: HealthCheck;
}

/** An ordering between two tasks, by task id. */
export interface PlanEdge {
  readonly from: string;
  readonly to: string;
  readonly type: 'hard' | 'soft';
  /** Why the edge exists: `depends_on`, `dependency`, `requires`. */
  readonly reason: 'depends_on' | 'dependency' | 'requires';
}

/**
 * A plan's edges: an `EdgeTable` (columns, see edge-table.ts) as planned, a plain array when the
 * plan was read back from JSON. Read them by iterating.
 */
export interface PlanEdgeList extends Iterable<PlanEdge> {
  readonly length: number;
}

/**
 * Every task of operation `to` waits for every task of operation `from`, as if each pair had an
 * edge of this `type` and `reason`.
 */
export interface PlanBarrier {
  /** The operation waited for. */
  readonly from: string;
  /** The operation that waits. */
  readonly to: string;
  readonly type: 'hard' | 'soft';
  /** `depends_on` or `dependency`. */
  readonly reason: 'depends_on' | 'dependency';
}

/** An operation with everything the engine needs resolved. */
export interface PlannedOperation {
  readonly id: string;
  readonly type: 'create' | 'update' | 'delete' | 'check';
  readonly target: 'server' | 'taskserv' | 'cluster';
  /** 0 for operations with no dependencies; one more than the deepest dependency otherwise. */
  readonly level: number;
  /** Operation ids this one waits for (from `depends_on`, `dependencies` and `requires`). */
  readonly depends_on: readonly string[];
  /** Task ids, in rollout order. */
  readonly tasks: readonly string[];
  readonly parallel: boolean;
  /** Seconds. */
  readonly timeout: number;
  readonly on_failure: OnFailure;
  /** The workflow's policy with the operation's override applied. */
  readonly retry_policy: RetryPolicy;
  /** The rollout, with `parallel: false` meaning `sequential` when none was given. */
  readonly rollout: Rollout;
}

/** A planned workflow: a DAG of tasks grouped by operation. */
export interface Plan {
  readonly workflow: string;
  readonly type: WorkflowType;
  /** Operations in topological order (by level, then by their order in the file). */
  readonly operations: readonly PlannedOperation[];
  readonly tasks: readonly PlannedTask[];
  readonly edges: PlanEdgeList;
  /** Absent in plans saved before barriers existed: read it as `plan.barriers ?? []`. */
  readonly barriers?: readonly PlanBarrier[];
}
