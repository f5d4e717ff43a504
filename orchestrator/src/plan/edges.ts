/**
 * Edges the user wrote: `depends_on` (every task of an operation waits for every task of each
 * operation it names, hard) and the workflow's `dependencies` (between operations or one item's
 * tasks, `hard`, `soft`, or `optional`, which is kept as soft only when both ends exist). Between
 * two whole operations with more task pairs than tasks, that is one barrier instead of edges.
 *
 * @internal
 * @module
 */
import { didYouMean, type Problem } from '../../../schemas/src/problems.ts';
import type { Operation } from '../../../schemas/src/workflow.ts';
import {
  connectTasks,
  listOf,
  needsBarrier,
  operationPath,
  q,
  tasksOf,
  type EdgeOrigin,
  type PlanContext,
} from './context.ts';

/**
 * Adds the edges of every operation's `depends_on`, reporting unknown ids and self-dependencies.
 *
 * @param ctx The planner state, after expansion.
 */
export function addDependsOnEdges(ctx: PlanContext): void {
  const { operations, operationIndex, planned, taskStart, edges, operationEdges } = ctx;
  const resolved = operationIndex.getAll(operations, dependsOnOf);
  let k = 0;
  for (let index = 0; index < operations.length; index++) {
    const op = operations[index]!;
    const names = op.depends_on;
    // This phase runs first and handles each operation once, so its operation edges are the
    // last ones added: a repeated entry is found among them without an index.
    const ownEdges = operationEdges.size;
    for (let j = 0; j < names.length; j++, k++) {
      const name = names[j]!;
      const dependency = resolved[k]!;
      if (dependency < 0) {
        const path = `${operationPath(index)}.depends_on[${j}]`;
        ctx.problems.push(unknownOperation(ctx, name, path, op.id));
        continue;
      }
      if (name === op.id) {
        ctx.problems.push({
          code: 'cycle',
          path: `${operationPath(index)}.depends_on[${j}]`,
          message: `operation ${q(op.id)} depends on itself: ${op.id} → ${op.id}`,
          hint: `remove ${q(name)} from its depends_on`,
        });
        continue;
      }
      if (!planned[index] || operationEdges.hasFromSince(dependency, ownEdges)) continue;
      operationEdges.addNew(dependency, index, true);
      if (needsBarrier(ctx, dependency, index)) {
        ctx.barriers.add(dependency, index, true, 'depends_on');
        continue;
      }
      // Each pair of operations is connected once, before any other edge: no duplicates.
      for (let to = taskStart[index]!, end = taskStart[index + 1]!; to < end; to++) {
        for (
          let from = taskStart[dependency]!, last = taskStart[dependency + 1]!;
          from < last;
          from++
        ) {
          edges.addNew(from, to, true);
        }
      }
    }
    // Every entry became an edge, in order: the operation's dependencies so far are its list.
    if (operationEdges.size - ownEdges === names.length) ctx.dependsOnAsWritten[index] = 1;
  }
}

const dependsOnOf = (op: Operation): readonly string[] => op.depends_on;

/** One end of a dependency, resolved to tasks. */
interface DependencyEnd {
  readonly operation: number;
  readonly item: string | undefined;
  /** The item's tasks; undefined for the whole operation. */
  readonly tasks: readonly number[] | undefined;
}

/**
 * Adds the edges of the workflow's `dependencies`: the target waits for the source.
 *
 * @param ctx The planner state, after expansion.
 */
export function addDependencyEdges(ctx: PlanContext): void {
  ctx.workflow.dependencies.forEach((dependency, k) => {
    const path = `dependencies[${k}]`;
    const optional = dependency.type === 'optional';
    const source = resolveEnd(ctx, dependency.source, `${path}.source`, optional);
    const target = resolveEnd(ctx, dependency.target, `${path}.target`, optional);
    if (source === undefined || target === undefined) return;
    if (
      source.operation === target.operation &&
      (source.item === undefined || target.item === undefined || source.item === target.item)
    ) {
      ctx.problems.push({
        code: 'cycle',
        path,
        message: `dependency makes ${q(dependency.target)} wait for itself: ${dependency.target} → ${dependency.source}`,
        hint: 'a dependency needs two different operations, or two different items of one operation',
      });
      return;
    }
    const origin: EdgeOrigin = { reason: 'dependency', path };
    const hard = dependency.type === 'hard';
    if (source.operation !== target.operation) {
      ctx.operationEdges.add(source.operation, target.operation, true, origin);
      if (
        source.tasks === undefined &&
        target.tasks === undefined &&
        needsBarrier(ctx, source.operation, target.operation)
      ) {
        ctx.barriers.add(source.operation, target.operation, hard, 'dependency');
        return;
      }
    }
    const sourceTasks = source.tasks ?? tasksOf(ctx, source.operation);
    const targetTasks = target.tasks ?? tasksOf(ctx, target.operation);
    connectTasks(ctx, sourceTasks, targetTasks, hard, origin);
  });
}

/** Resolves `op` or `op.item` to tasks; undefined (and a problem unless optional) when unknown. */
function resolveEnd(
  ctx: PlanContext,
  reference: string,
  path: string,
  optional: boolean,
): DependencyEnd | undefined {
  // Operation ids cannot contain dots, so the first one separates the item.
  const dot = reference.indexOf('.');
  const id = dot < 0 ? reference : reference.slice(0, dot);
  const item = dot < 0 ? undefined : reference.slice(dot + 1);
  const index = ctx.operationIndex.get(id);
  if (index === undefined) {
    if (!optional) ctx.problems.push(unknownOperation(ctx, id, path));
    return undefined;
  }
  if (item === undefined) return { operation: index, item, tasks: undefined };
  const declared = ctx.operations[index]!.items;
  const items = declared.length > 0 ? declared : tasksOf(ctx, index).map((t) => ctx.tasks[t]!.item);
  if (!items.includes(item)) {
    if (!optional) {
      ctx.problems.push({
        code: 'unknown-item',
        path,
        message: `operation ${q(id)} has no item ${q(item)}`,
        expected:
          items.length > 0
            ? `one of ${listOf(
                items.map((i) => `${id}.${i}`),
                12,
                'or',
              )}`
            : `${q(id)} alone`,
        received: q(reference),
        hint:
          didYouMean(item, items) ??
          `refer to the whole operation as ${q(id)}, or to one of its items as "${id}.ITEM"`,
      });
    }
    return undefined;
  }
  return {
    operation: index,
    item,
    tasks: tasksOf(ctx, index).filter((t) => ctx.tasks[t]!.item === item),
  };
}

function unknownOperation(ctx: PlanContext, name: string, path: string, from?: string): Problem {
  const suggestion = ctx.knownOperations.suggest(name);
  return {
    code: 'unknown-operation',
    path,
    message:
      from === undefined
        ? `unknown operation ${q(name)}`
        : `operation ${q(from)} depends on ${q(name)}, which is not an operation of this workflow`,
    expected: `one of ${ctx.knownOperations.choices()}`,
    received: q(name),
    hint: suggestion ?? 'check the spelling against the operation ids',
  };
}
