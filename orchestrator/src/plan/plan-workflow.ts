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
import type { Taskserv, Workflow } from '../../../schemas/src/workflow.ts';
import {
  EdgeSet,
  operationPath,
  q,
  type OperationState,
  type OriginRef,
  type PlanContext,
} from './context.ts';
import { addDependencyEdges, addDependsOnEdges } from './edges.ts';
import { expandOperations } from './expand.ts';
import { indexInventory } from './inventory.ts';
import { orderOperations } from './order.ts';
import { mergeRetryPolicy, resolveRollout } from './policy.ts';
import { addTaskservEdges } from './requires.ts';
import type { Plan, PlanEdge, PlannedOperation, PlannedTask } from './types.ts';

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
  const operationIndex = new Map<string, number>();
  const operations = workflow.operations.map((operation, index): OperationState => {
    const first = operationIndex.get(operation.id);
    if (first === undefined) operationIndex.set(operation.id, index);
    else {
      problems.push({
        code: 'duplicate-id',
        path: `${operationPath(index)}.id`,
        message: `operation id ${q(operation.id)} is already used by operations[${first}]`,
        hint: 'operation ids must be unique; rename one of them',
      });
    }
    return {
      index,
      operation,
      planned: first === undefined,
      taskStart: 0,
      taskEnd: 0,
      deps: [],
      depOrigins: [],
    };
  });
  const taskOperation: number[] = [];
  const ctx: PlanContext = {
    workflow,
    problems,
    servers,
    taskservs,
    operations,
    operationIndex,
    tasks: [],
    taskOperation,
    taskItem: [],
    edges: new EdgeSet(taskOperation),
  };

  expandOperations(ctx);
  addDependsOnEdges(ctx);
  addDependencyEdges(ctx);
  addTaskservEdges(ctx);
  const levels = orderOperations(ctx);
  if (problems.length > 0) throw new InvalidWorkflowError(problems);
  return assemble(ctx, levels);
}

/** Builds the result: operations by level then file order, tasks alike, edges by waiting task. */
function assemble(ctx: PlanContext, levels: Int32Array): Plan {
  const { workflow, operations, tasks, edges } = ctx;
  const order = sortByLevel(operations, levels);

  const plannedOperations: PlannedOperation[] = [];
  const plannedTasks: PlannedTask[] = [];
  const position = new Int32Array(tasks.length);
  for (const index of order) {
    const { operation: op, deps, taskStart, taskEnd } = operations[index]!;
    const taskIds: string[] = [];
    for (let t = taskStart; t < taskEnd; t++) {
      position[t] = plannedTasks.length;
      plannedTasks.push(tasks[t]!);
      taskIds.push(tasks[t]!.id);
    }
    plannedOperations.push({
      id: op.id,
      type: op.type,
      target: op.target,
      level: levels[index]!,
      depends_on: deps.map((d) => operations[d]!.operation.id),
      tasks: taskIds,
      parallel: op.parallel,
      timeout: op.timeout,
      on_failure: op.on_failure,
      retry_policy: mergeRetryPolicy(workflow.retry_policy, op.retry_policy),
      rollout: resolveRollout(op),
    });
  }

  // Counting sort by the waiting task's position: O(E), and edges read in plan order.
  const m = edges.size;
  const start = new Int32Array(plannedTasks.length + 1);
  for (let e = 0; e < m; e++) start[position[edges.to[e]!]! + 1]!++;
  for (let i = 0; i < plannedTasks.length; i++) start[i + 1]! += start[i]!;
  const planEdges = new Array<PlanEdge>(m);
  for (let e = 0; e < m; e++) {
    planEdges[start[position[edges.to[e]!]!]!++] = {
      from: tasks[edges.from[e]!]!.id,
      to: tasks[edges.to[e]!]!.id,
      type: edges.hard[e] ? 'hard' : 'soft',
      reason: reasonOf(edges.origin[e]!),
    };
  }

  return {
    workflow: workflow.name,
    type: workflow.type,
    operations: plannedOperations,
    tasks: plannedTasks,
    edges: planEdges,
  };
}

/** Planned operation indices by level, then file order (a stable counting sort). */
function sortByLevel(operations: readonly OperationState[], levels: Int32Array): number[] {
  let maxLevel = 0;
  for (const state of operations) maxLevel = Math.max(maxLevel, levels[state.index]!);
  const start = new Int32Array(maxLevel + 2);
  for (const state of operations) if (state.planned) start[levels[state.index]! + 1]!++;
  for (let l = 0; l <= maxLevel; l++) start[l + 1]! += start[l]!;
  const order = new Array<number>(start[maxLevel + 1]!);
  for (const state of operations) {
    if (state.planned) order[start[levels[state.index]!]!++] = state.index;
  }
  return order;
}

function reasonOf(origin: OriginRef): PlanEdge['reason'] {
  return typeof origin === 'number' ? 'depends_on' : origin.reason;
}
