/**
 * The planner's working state, shared by its phases (inventory, expansion, edges, requires,
 * ordering): indexes of the workflow, the tasks built so far, the task and operation edges with
 * where each came from, and the problems collected along the way.
 *
 * @internal
 * @module
 */
import type { Problem } from '../../../schemas/src/problems.ts';
import type { Operation, Server, Taskserv, Workflow } from '../../../schemas/src/workflow.ts';
import type { PlannedTask } from './types.ts';

/** Why an edge exists and where the user wrote it, for cycle messages. */
export interface EdgeOrigin {
  readonly reason: 'depends_on' | 'dependency' | 'requires';
  /** The field that caused it, e.g. `operations[2].depends_on[0]` or `dependencies[1]`. */
  readonly path: string;
  /** A sentence for edges the user did not write, e.g. `kubernetes on web-1 requires containerd`. */
  readonly detail?: string;
}

/**
 * An origin as stored: a number `j` stands for `depends_on[j]` of the waiting operation, so the
 * common case costs no allocation (allocation dominates planning time at 100k operations).
 */
export type OriginRef = number | EdgeOrigin;

/**
 * Expands a stored origin.
 *
 * @param waiter The index of the operation that waits.
 * @param origin The stored origin.
 * @returns The origin with its path.
 */
export function resolveOrigin(waiter: number, origin: OriginRef): EdgeOrigin {
  if (typeof origin !== 'number') return origin;
  return { reason: 'depends_on', path: `${operationPath(waiter)}.depends_on[${origin}]` };
}

/** `operations[i]`. */
export function operationPath(index: number): string {
  return `operations[${index}]`;
}

/** A server of the inventory with where it was written. */
export interface ServerEntry {
  readonly server: Server;
  readonly index: number;
  /** Its taskservs as a set, for membership tests. */
  readonly taskservs: ReadonlySet<string>;
}

/** A known taskserv with where it was defined (`taskservs[i]` in the workflow, or the catalog). */
export interface TaskservEntry {
  readonly taskserv: Taskserv;
  /** `taskservs[i]` for workflow taskservs; undefined for catalog entries. */
  readonly path: string | undefined;
}

/** One operation being planned. */
export interface OperationState {
  readonly index: number;
  readonly operation: Operation;
  /** False for a second operation with an id already used: it is reported, not planned. */
  readonly planned: boolean;
  /** Its tasks are `PlanContext.tasks[taskStart .. taskEnd)`, in rollout order. */
  taskStart: number;
  taskEnd: number;
  /** Indices of the operations this one waits for, in the order they were found. */
  readonly deps: number[];
  /** Why each of `deps` exists, parallel to it. */
  readonly depOrigins: OriginRef[];
}

/** The planner's working state. */
export interface PlanContext {
  readonly workflow: Workflow;
  readonly problems: Problem[];
  readonly servers: ReadonlyMap<string, ServerEntry>;
  readonly taskservs: ReadonlyMap<string, TaskservEntry>;
  readonly operations: OperationState[];
  /** The first operation with each id. */
  readonly operationIndex: ReadonlyMap<string, number>;
  readonly tasks: PlannedTask[];
  /** The operation of each task, parallel to `tasks`. */
  readonly taskOperation: number[];
  /** The index in its operation's `items` of each task's item, -1 when implied (all servers). */
  readonly taskItem: number[];
  readonly edges: EdgeSet;
}

const PAIR_FACTOR = 2 ** 26;

/** Task edges without duplicates: a second edge between the same tasks keeps the stronger type. */
export class EdgeSet {
  readonly from: number[] = [];
  readonly to: number[] = [];
  readonly hard: boolean[] = [];
  readonly origin: OriginRef[] = [];
  /** Edges whose ends belong to the same operation: the only ones that can close a task cycle. */
  readonly internal: number[] = [];
  // Built on the first `add`: `addNew` edges (depends_on) are unique by construction, and a plan
  // with nothing else never pays for the index.
  private byPair: Map<number, number> | undefined;

  /** @param taskOperation The operation of each task, read when an edge is added. */
  constructor(private readonly taskOperation: readonly number[]) {}

  get size(): number {
    return this.from.length;
  }

  /**
   * Adds an edge known not to exist yet: task `to` waits for task `from`.
   *
   * @param from The task that comes first.
   * @param to The task that waits.
   * @param hard Whether `to` is skipped when `from` fails.
   * @param origin Why the edge exists.
   */
  addNew(from: number, to: number, hard: boolean, origin: OriginRef): void {
    // A number key is much cheaper than a string; exact while there are fewer than 2^26 tasks.
    this.byPair?.set(from * PAIR_FACTOR + to, this.from.length);
    if (this.taskOperation[from] === this.taskOperation[to]) this.internal.push(this.from.length);
    this.from.push(from);
    this.to.push(to);
    this.hard.push(hard);
    this.origin.push(origin);
  }

  /**
   * Adds an edge unless it exists; an existing soft edge becomes hard if this one is.
   *
   * @param from The task that comes first.
   * @param to The task that waits.
   * @param hard Whether `to` is skipped when `from` fails.
   * @param origin Why the edge exists.
   */
  add(from: number, to: number, hard: boolean, origin: OriginRef): void {
    if (this.byPair === undefined) {
      this.byPair = new Map();
      for (let e = 0; e < this.from.length; e++) {
        this.byPair.set(this.from[e]! * PAIR_FACTOR + this.to[e]!, e);
      }
    }
    const existing = this.byPair.get(from * PAIR_FACTOR + to);
    if (existing === undefined) {
      this.addNew(from, to, hard, origin);
    } else if (hard && !this.hard[existing]) {
      this.hard[existing] = true;
      this.origin[existing] = origin;
    }
  }
}

/**
 * Records that operation `waiter` waits for operation `dependency`, once.
 *
 * @param ctx The planner state.
 * @param waiter The operation index that waits.
 * @param dependency The operation index it waits for; the same index is ignored.
 * @param origin Why, kept for the first time the pair is seen.
 * @returns Whether the pair is new.
 */
export function addOperationDependency(
  ctx: PlanContext,
  waiter: number,
  dependency: number,
  origin: OriginRef,
): boolean {
  if (waiter === dependency) return false;
  const state = ctx.operations[waiter]!;
  if (state.deps.includes(dependency)) return false;
  state.deps.push(dependency);
  state.depOrigins.push(origin);
  return true;
}

/** The task indices of an operation. */
export function tasksOf(state: OperationState): number[] {
  const tasks: number[] = [];
  for (let t = state.taskStart; t < state.taskEnd; t++) tasks.push(t);
  return tasks;
}

/**
 * Makes every task of `waiters` wait for every task of `firsts` (the operation edge is the
 * caller's, recorded once rather than per pair).
 *
 * @param ctx The planner state.
 * @param firsts Task indices that come first.
 * @param waiters Task indices that wait.
 * @param hard Edge type.
 * @param origin Why.
 */
export function connectTasks(
  ctx: PlanContext,
  firsts: readonly number[],
  waiters: readonly number[],
  hard: boolean,
  origin: OriginRef,
): void {
  for (const to of waiters) {
    for (const from of firsts) {
      if (from !== to) ctx.edges.add(from, to, hard, origin);
    }
  }
}

/** Quotes a name for a message. */
export function q(name: string): string {
  return JSON.stringify(name);
}

/**
 * Joins names for a message: `a, b and c`, or `a, b and 3 more` past `max`.
 *
 * @param names The names, already quoted if they need to be.
 * @param max How many to show.
 * @param conjunction The word before the last one.
 * @returns The list as text.
 */
export function listOf(names: readonly string[], max = 8, conjunction = 'and'): string {
  const shown = names.slice(0, max);
  const rest = names.length - shown.length;
  if (rest > 0) return `${shown.join(', ')} ${conjunction} ${rest} more`;
  if (shown.length < 2) return shown.join('');
  return `${shown.slice(0, -1).join(', ')} ${conjunction} ${shown[shown.length - 1]}`;
}
