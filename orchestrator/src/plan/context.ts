/**
 * The planner's working state, shared by its phases (inventory, expansion, edges, requires,
 * ordering): indexes of the workflow, the tasks built so far, the task and operation edges with
 * where each came from, and the problems collected along the way.
 *
 * At 100k operations planning time is mostly allocation, so per-operation and per-task state and
 * the edges live in typed arrays (outside the JS heap, never scanned or copied by the collector),
 * and an edge's origin is only stored when it is not the common case (a `depends_on` entry, which
 * can be found again when a message needs it).
 *
 * @internal
 * @module
 */
import type { Problem } from '../../../schemas/src/problems.ts';
import type { Operation, Server, Taskserv, Workflow } from '../../../schemas/src/workflow.ts';
import { toCsr, type Csr } from './graph.ts';
import type { KnownNames } from './known-names.ts';
import type { NameIndex } from './name-index.ts';
import type { PlannedTask } from './types.ts';

/** Why an edge exists and where the user wrote it, for cycle messages. */
export interface EdgeOrigin {
  readonly reason: 'depends_on' | 'dependency' | 'requires';
  /** The field that caused it, e.g. `operations[2].depends_on[0]` or `dependencies[1]`. */
  readonly path: string;
  /** A sentence for edges the user did not write, e.g. `kubernetes on web-1 requires containerd`. */
  readonly detail?: string;
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

/** The planner's working state. */
export interface PlanContext {
  readonly workflow: Workflow;
  readonly problems: Problem[];
  readonly servers: ReadonlyMap<string, ServerEntry>;
  readonly taskservs: ReadonlyMap<string, TaskservEntry>;
  /** The workflow's operations, by index. */
  readonly operations: readonly Operation[];
  /** The first operation with each id. */
  readonly operationIndex: NameIndex;
  /** 0 for a second operation with an id already used: it is reported, not planned. */
  readonly planned: Uint8Array;
  /**
   * Tasks are created operation by operation, so the tasks of operation `i` are
   * `tasks[taskStart[i] .. taskStart[i + 1])`, in rollout order.
   */
  readonly taskStart: Int32Array;
  readonly tasks: PlannedTask[];
  /**
   * The operation of each task, parallel to `tasks`; filled in once expansion is done (tasks are
   * created operation by operation, so it follows from `taskStart`).
   */
  taskOperation: Int32Array;
  /**
   * 1 for an operation whose `depends_on` entries each became an operation edge, in order (none
   * unknown, repeated or itself): then, with no edges from elsewhere, its dependencies are that
   * list, and the plan can share it.
   */
  readonly dependsOnAsWritten: Uint8Array;
  /** Task edges. */
  readonly edges: EdgeList;
  /** Operation edges: `from` is the dependency, `to` the operation that waits. */
  readonly operationEdges: EdgeList;
  /** Whole-operation dependencies kept as barriers instead of task edges. */
  readonly barriers: BarrierList;
  /** Operation ids and server names, for problems about names that are neither. */
  readonly knownOperations: KnownNames;
  readonly knownServers: KnownNames;
}

/** A barrier under construction: operation indices. */
export interface Barrier {
  readonly from: number;
  readonly to: number;
  hard: boolean;
  reason: 'depends_on' | 'dependency';
}

/**
 * Barriers without duplicates, in insertion order: a second one between the same operations keeps
 * the stronger type, with its reason, as {@link EdgeList.add} does for edges.
 */
export class BarrierList {
  readonly list: Barrier[] = [];
  private readonly byPair = new Map<number, Barrier>();

  add(from: number, to: number, hard: boolean, reason: Barrier['reason']): void {
    const key = pairKey(from, to);
    const existing = this.byPair.get(key);
    if (existing !== undefined) {
      if (hard && !existing.hard) Object.assign(existing, { hard, reason });
      return;
    }
    const barrier = { from, to, hard, reason };
    this.byPair.set(key, barrier);
    this.list.push(barrier);
  }
}

/**
 * Whether `from`'s tasks × `to`'s tasks are better kept as one barrier than as edges: when there
 * are more pairs than tasks. One task on either side stays edges (as many as the other side has).
 */
export function needsBarrier(ctx: PlanContext, from: number, to: number): boolean {
  const m = ctx.taskStart[from + 1]! - ctx.taskStart[from]!;
  const n = ctx.taskStart[to + 1]! - ctx.taskStart[to]!;
  return m * n > m + n;
}

/** A number key for a pair of nodes; exact while there are fewer than 2^26 nodes. */
const pairKey = (from: number, to: number) => from * 2 ** 26 + to;

/**
 * Edges without duplicates, in insertion order: a second edge between the same nodes keeps the
 * stronger type. Nodes are task or operation indices.
 *
 * Edges live in typed arrays that double when full: at 100k operations a plan has 200k edges, and
 * numbers outside the JS heap are never scanned or copied by the garbage collector.
 */
export class EdgeList {
  private fromNodes: Int32Array;
  private toNodes: Int32Array;
  private hardFlags: Uint8Array;
  private count = 0;
  private capacity: number;
  /** Origins of edges that do not come from `depends_on`, by edge index. */
  readonly origins = new Map<number, EdgeOrigin>();
  // Built on the first `add`: `addNew` edges (depends_on) are unique by construction, and a plan
  // with nothing else never pays for the index.
  private byPair: Map<number, number> | undefined;

  /** @param capacity Room for this many edges before the arrays grow. */
  constructor(capacity = 16) {
    this.capacity = capacity;
    this.fromNodes = new Int32Array(capacity);
    this.toNodes = new Int32Array(capacity);
    this.hardFlags = new Uint8Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** The node each edge starts from (indices past `size` are unused room). */
  get from(): Int32Array {
    return this.fromNodes;
  }

  /** The node that waits, for each edge (indices past `size` are unused room). */
  get to(): Int32Array {
    return this.toNodes;
  }

  /** 1 for a hard edge, 0 for soft, for each edge (indices past `size` are unused room). */
  get hard(): Uint8Array {
    return this.hardFlags;
  }

  /** Makes room for `extra` more edges at once. */
  reserve(extra: number): void {
    const needed = this.count + extra;
    if (needed <= this.capacity) return;
    const capacity = Math.max(needed, this.capacity * 2);
    const from = new Int32Array(capacity);
    const to = new Int32Array(capacity);
    const hard = new Uint8Array(capacity);
    from.set(this.fromNodes.subarray(0, this.count));
    to.set(this.toNodes.subarray(0, this.count));
    hard.set(this.hardFlags.subarray(0, this.count));
    this.fromNodes = from;
    this.toNodes = to;
    this.hardFlags = hard;
    this.capacity = capacity;
  }

  /**
   * Adds an edge known not to exist yet: `to` waits for `from`.
   *
   * @param from The node that comes first.
   * @param to The node that waits.
   * @param hard Whether `to` is skipped when `from` fails.
   * @param origin Why the edge exists; none for `depends_on`.
   */
  addNew(from: number, to: number, hard: boolean, origin?: EdgeOrigin): void {
    const e = this.count;
    if (e === this.capacity) this.reserve(1);
    this.fromNodes[e] = from;
    this.toNodes[e] = to;
    this.hardFlags[e] = hard ? 1 : 0;
    this.count = e + 1;
    if (this.byPair !== undefined) this.byPair.set(pairKey(from, to), e);
    if (origin !== undefined) this.origins.set(e, origin);
  }

  /**
   * Adds an edge unless it exists; an existing soft edge becomes hard if this one is.
   *
   * @param from The node that comes first.
   * @param to The node that waits.
   * @param hard Whether `to` is skipped when `from` fails.
   * @param origin Why the edge exists.
   * @returns Whether the edge is new.
   */
  add(from: number, to: number, hard: boolean, origin: EdgeOrigin): boolean {
    const existing = this.find(from, to);
    if (existing === undefined) {
      this.addNew(from, to, hard, origin);
      return true;
    }
    if (hard && !this.hardFlags[existing]) {
      this.hardFlags[existing] = 1;
      this.origins.set(existing, origin);
    }
    return false;
  }

  /** The index of the edge from `from` to `to`, if there is one. */
  find(from: number, to: number): number | undefined {
    if (this.byPair === undefined) {
      this.byPair = new Map();
      for (let e = 0; e < this.count; e++) {
        this.byPair.set(pairKey(this.fromNodes[e]!, this.toNodes[e]!), e);
      }
    }
    return this.byPair.get(pairKey(from, to));
  }

  /** Whether an edge at index `start` or later starts from `from`. */
  hasFromSince(from: number, start: number): boolean {
    for (let e = start; e < this.count; e++) if (this.fromNodes[e] === from) return true;
    return false;
  }

  /**
   * The edges as a compressed graph.
   *
   * @param nodes The number of nodes.
   * @param reversed Whether to read each edge from its waiting node to the node it waits for.
   * @returns The graph; successors keep insertion order.
   */
  toCsr(nodes: number, reversed = false): Csr {
    const from = this.fromNodes.subarray(0, this.count);
    const to = this.toNodes.subarray(0, this.count);
    return reversed ? toCsr(nodes, to, from) : toCsr(nodes, from, to);
  }
}

/**
 * Where an edge came from, with the `depends_on` entry found again when none was stored.
 *
 * @param ctx The planner state.
 * @param edges `ctx.edges` or `ctx.operationEdges`.
 * @param e The edge index.
 * @returns The origin.
 */
export function originOf(ctx: PlanContext, edges: EdgeList, e: number): EdgeOrigin {
  const stored = edges.origins.get(e);
  if (stored !== undefined) return stored;
  const byTask = edges === ctx.edges;
  const waiter = byTask ? ctx.taskOperation[edges.to[e]!]! : edges.to[e]!;
  const dependency = byTask ? ctx.taskOperation[edges.from[e]!]! : edges.from[e]!;
  const j = ctx.operations[waiter]!.depends_on.indexOf(ctx.operations[dependency]!.id);
  return { reason: 'depends_on', path: `${operationPath(waiter)}.depends_on[${j}]` };
}

/** The task indices of operation `i`. */
export function tasksOf(ctx: PlanContext, i: number): number[] {
  const tasks: number[] = [];
  for (let t = ctx.taskStart[i]!, end = ctx.taskStart[i + 1]!; t < end; t++) tasks.push(t);
  return tasks;
}

/**
 * Makes every task of `waiters` wait for every task of `firsts`, and their operations too.
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
  origin: EdgeOrigin,
): void {
  const { edges, operationEdges, taskOperation } = ctx;
  for (const to of waiters) {
    for (const from of firsts) {
      if (from === to) continue;
      edges.add(from, to, hard, origin);
      const waiter = taskOperation[to]!;
      const dependency = taskOperation[from]!;
      // Operation edges are always hard: they order levels; task edges carry the type.
      if (waiter !== dependency) operationEdges.add(dependency, waiter, true, origin);
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
