/**
 * Plans a validated workflow: expands operations into tasks, connects them (`depends_on`,
 * `dependencies`, taskserv `requires` and conflicts), orders operations into levels, and either
 * returns the plan or throws every problem found at once.
 *
 * Cost is O(V + E) in tasks and edges: numbers and typed arrays inside, objects only for the result.
 *
 * @module
 */
import { InvalidWorkflowError, type Problem } from '../../../schemas/src/problems.ts';
import type { Operation, Taskserv, Workflow } from '../../../schemas/src/workflow.ts';
import { BarrierList, EdgeList, operationPath, q, type PlanContext } from './context.ts';
import { addDependencyEdges, addDependsOnEdges } from './edges.ts';
import type { Csr } from './graph.ts';
import { edgeKind, EdgeTable } from './edge-table.ts';
import { expandOperations } from './expand.ts';
import { indexInventory } from './inventory.ts';
import { KnownNames } from './known-names.ts';
import { NameIndex } from './name-index.ts';
import { orderOperations } from './order.ts';
import { mergeRetryPolicy, resolveRollout } from './policy.ts';
import { addTaskservEdges } from './requires.ts';
import type { Plan, PlannedOperation, PlannedTask } from './types.ts';

/** How to plan. */
export interface PlanOptions {
  /**
   * The taskserv catalog by name. The workflow's own `taskservs` replace entries of the same name.
   *
   * @default an empty catalog
   */
  readonly catalog?: ReadonlyMap<string, Taskserv>;
}

/**
 * Plans a workflow into a DAG of tasks grouped by operation.
 *
 * @param workflow The workflow as valibot output (defaults filled).
 * @param options The taskserv catalog.
 * @returns Operations by level then file order, their tasks in the same order, and the edges.
 * @throws {InvalidWorkflowError} With every problem found (unknown ids, cycles, conflicts, …); each
 *   `path` points at the field to fix, e.g. `operations[3].depends_on[1]`.
 *
 * @example
 * ```ts
 * const plan = planWorkflow(v.parse(WorkflowSchema, input), { catalog });
 * console.log(renderPlan(plan, 'table'));
 * ```
 */
export function planWorkflow(workflow: Workflow, options: PlanOptions = {}): Plan {
  const problems: Problem[] = [];
  const { servers, taskservs } = indexInventory(workflow, options.catalog ?? new Map(), problems);
  const { operations } = workflow;
  const operationIndex = new NameIndex(operations.length);
  const planned = new Uint8Array(operations.length);
  const firstWithId = operationIndex.addAll(operations, idOf);
  for (let index = 0; index < operations.length; index++) {
    const first = firstWithId[index]!;
    if (first < 0) {
      planned[index] = 1;
      continue;
    }
    problems.push({
      code: 'duplicate-id',
      path: `${operationPath(index)}.id`,
      message: `operation id ${q(operations[index]!.id)} is already used by operations[${first}]`,
      hint: 'operation ids must be unique; rename one of them',
    });
  }
  const ctx: PlanContext = {
    workflow,
    problems,
    servers,
    taskservs,
    operations,
    operationIndex,
    planned,
    dependsOnAsWritten: new Uint8Array(operations.length),
    taskStart: new Int32Array(operations.length + 1),
    tasks: [],
    taskOperation: new Int32Array(0),
    // Room for two dependencies an operation before the lists grow: growing a typed array means
    // a new zeroed buffer and a copy, which at 200k edges took 15 ms a plan under load.
    edges: new EdgeList(2 * operations.length),
    operationEdges: new EdgeList(2 * operations.length),
    barriers: new BarrierList(),
    knownOperations: new KnownNames(() => operationIndex.keys()),
    knownServers: new KnownNames(() => servers.keys()),
  };

  expandOperations(ctx);
  addDependsOnEdges(ctx);
  addDependencyEdges(ctx);
  addTaskservEdges(ctx);
  const levels = orderOperations(ctx);
  if (problems.length > 0) throw new InvalidWorkflowError(problems);
  return assemble(ctx, levels);
}

const idOf = (op: Operation): string => op.id;

/**
 * Builds the result: operations by level then file order, tasks alike, edges by waiting task,
 * barriers in the order found.
 */
function assemble(ctx: PlanContext, levels: Int32Array): Plan {
  const { workflow, operations, planned, taskStart, tasks, edges, operationEdges } = ctx;
  const order = sortByLevel(planned, levels);
  // Each operation's dependencies, in the order they were found: operation edges by waiter.
  const dependencies = operationEdges.toCsr(operations.length, true);
  // Where each operation and its first task go in the plan.
  const rank = new Int32Array(operations.length);
  const firstPosition = new Int32Array(operations.length);
  for (let o = 0, next = 0; o < order.length; o++) {
    const index = order[o]!;
    rank[index] = o;
    firstPosition[index] = next;
    next += taskStart[index + 1]! - taskStart[index]!;
  }

  // Built in file order, the order operations and tasks sit in memory, and put in place by rank:
  // reading them by level made every operation a cache miss (70 ms more at 100k operations).
  const plannedOperations = new Array<PlannedOperation>(order.length);
  const plannedTasks = new Array<PlannedTask>(tasks.length);
  const position = new Int32Array(tasks.length);
  for (let index = 0; index < operations.length; index++) {
    if (!planned[index]) continue;
    const op = operations[index]!;
    // Arrays of their exact size: a pushed-to empty array reserves room for 17 elements.
    const first = taskStart[index]!;
    const taskIds = new Array<string>(taskStart[index + 1]! - first);
    for (let k = 0, at = firstPosition[index]!; k < taskIds.length; k++, at++) {
      const task = tasks[first + k]!;
      position[first + k] = at;
      plannedTasks[at] = task;
      taskIds[k] = task.id;
    }
    plannedOperations[rank[index]!] = {
      id: op.id,
      type: op.type,
      target: op.target,
      level: levels[index]!,
      depends_on: dependencyIds(ctx, dependencies, index),
      tasks: taskIds,
      parallel: op.parallel,
      timeout: op.timeout,
      on_failure: op.on_failure,
      retry_policy: mergeRetryPolicy(workflow.retry_policy, op.retry_policy),
      rollout: resolveRollout(op),
    };
  }

  // Edges grouped by the waiting task's position (a counting sort: O(E)), in insertion order.
  const m = edges.size;
  const start = new Int32Array(plannedTasks.length + 1);
  for (let e = 0; e < m; e++) start[position[edges.to[e]!]! + 1]!++;
  for (let i = 0; i < plannedTasks.length; i++) start[i + 1]! += start[i]!;
  const from = new Int32Array(m);
  const to = new Int32Array(m);
  const kinds = new Uint8Array(m);
  const { origins } = edges;
  for (let e = 0; e < m; e++) {
    const waiter = position[edges.to[e]!]!;
    const at = start[waiter]!++;
    from[at] = position[edges.from[e]!]!;
    to[at] = waiter;
    const origin = origins.size === 0 ? undefined : origins.get(e);
    kinds[at] = edgeKind(edges.hard[e] === 1, origin?.reason ?? 'depends_on');
  }
  return {
    workflow: workflow.name,
    type: workflow.type,
    operations: plannedOperations,
    tasks: plannedTasks,
    edges: new EdgeTable(plannedTasks, from, to, kinds),
    barriers: ctx.barriers.list.map((b) => ({
      from: operations[b.from]!.id,
      to: operations[b.to]!.id,
      type: b.hard ? 'hard' : 'soft',
      reason: b.reason,
    })),
  };
}

/**
 * The ids of the operations `op` waits for, in the order found: its own `depends_on` list when
 * that is what they are (the common case: one list fewer for the collector to copy), else a new
 * list (entries repeated, or more from `dependencies` and `requires`).
 */
function dependencyIds(ctx: PlanContext, dependencies: Csr, index: number): readonly string[] {
  const first = dependencies.offsets[index]!;
  const count = dependencies.offsets[index + 1]! - first;
  const written = ctx.operations[index]!.depends_on;
  if (ctx.dependsOnAsWritten[index] && count === written.length) return written;
  const ids = new Array<string>(count);
  for (let k = 0; k < count; k++) ids[k] = ctx.operations[dependencies.targets[first + k]!]!.id;
  return ids;
}

/** Planned operation indices by level, then file order (a stable counting sort). */
function sortByLevel(planned: Uint8Array, levels: Int32Array): number[] {
  let maxLevel = 0;
  for (let i = 0; i < levels.length; i++) if (levels[i]! > maxLevel) maxLevel = levels[i]!;
  const start = new Int32Array(maxLevel + 2);
  for (let i = 0; i < levels.length; i++) if (planned[i]) start[levels[i]! + 1]!++;
  for (let l = 0; l <= maxLevel; l++) start[l + 1]! += start[l]!;
  const order = new Array<number>(start[maxLevel + 1]!);
  for (let i = 0; i < levels.length; i++) if (planned[i]) order[start[levels[i]!]!++] = i;
  return order;
}
