/**
 * Orders operations into levels with Kahn's algorithm and explains what it cannot order: each
 * distinct cycle is reported once with its whole path (`a → b → c → a`, each waiting for the next)
 * and the field behind every link. Tasks are checked too, for cycles inside one operation (item
 * dependencies), the only ones an acyclic operation graph can still hide.
 *
 * @internal
 * @module
 */
import { originOf, q, type EdgeOrigin, type PlanContext } from './context.ts';
import { findCycles, toCsr, topologicalLevels } from './graph.ts';

/** Links of a cycle shown in full before the rest is elided. */
const MAX_SHOWN_LINKS = 12;

/**
 * Computes operation levels, reporting operation cycles, then task cycles when there are none.
 *
 * @param ctx The planner state, with every edge added.
 * @returns Each operation's level (-1 for operations on or behind a cycle).
 */
export function orderOperations(ctx: PlanContext): Int32Array {
  const n = ctx.operations.length;
  const { levels, unsorted } = topologicalLevels(ctx.operationEdges.toCsr(n));
  if (unsorted.length > 0) {
    reportOperationCycles(ctx, findCycles(ctx.operationEdges.toCsr(n, true), unsorted));
  } else {
    checkTaskCycles(ctx);
  }
  return levels;
}

function reportOperationCycles(ctx: PlanContext, cycles: readonly number[][]): void {
  for (const cycle of cycles) {
    const ids = cycle.map((i) => ctx.operations[i]!.id);
    const origins = cycle.map((waiter, k) => {
      const dependency = cycle[(k + 1) % cycle.length]!;
      const e = ctx.operationEdges.find(dependency, waiter)!;
      return originOf(ctx, ctx.operationEdges, e);
    });
    ctx.problems.push({
      code: 'cycle',
      path: origins[0]!.path,
      message: `operations wait for each other in a cycle: ${chain(ids)}`,
      hint: `break one link: ${links(ids, origins)}`,
    });
  }
}

function checkTaskCycles(ctx: PlanContext): void {
  const { edges, tasks, taskOperation } = ctx;
  // With operations acyclic, only edges inside one operation (item dependencies) can close a cycle.
  const internal: number[] = [];
  for (let e = 0; e < edges.size; e++) {
    if (taskOperation[edges.from[e]!] === taskOperation[edges.to[e]!]) internal.push(e);
  }
  if (internal.length === 0) return;
  const from = internal.map((e) => edges.from[e]!);
  const to = internal.map((e) => edges.to[e]!);
  const { unsorted } = topologicalLevels(toCsr(tasks.length, from, to));
  if (unsorted.length === 0) return;
  for (const cycle of findCycles(toCsr(tasks.length, to, from), unsorted)) {
    const ids = cycle.map((t) => tasks[t]!.id);
    const origins = cycle.map((waiter, k) => {
      const e = edges.find(cycle[(k + 1) % cycle.length]!, waiter)!;
      return originOf(ctx, edges, e);
    });
    ctx.problems.push({
      code: 'cycle',
      path: origins[0]!.path,
      message: `tasks of operation ${q(tasks[cycle[0]!]!.operation)} wait for each other in a cycle: ${chain(ids)}`,
      hint: `break one link: ${links(ids, origins)}`,
    });
  }
}

/** `a → b → c → a`, eliding the middle of very long cycles. */
function chain(ids: readonly string[]): string {
  const closed = [...ids, ids[0]!];
  if (closed.length <= MAX_SHOWN_LINKS + 1) return closed.join(' → ');
  const head = closed.slice(0, MAX_SHOWN_LINKS / 2);
  const tail = closed.slice(-MAX_SHOWN_LINKS / 2);
  return `${head.join(' → ')} → … (${closed.length - head.length - tail.length} more) → ${tail.join(' → ')}`;
}

/** What makes each link of a cycle, where the user can change it. */
function links(ids: readonly string[], origins: readonly EdgeOrigin[]): string {
  const parts = origins.slice(0, MAX_SHOWN_LINKS).map((origin, k) => {
    const waiter = ids[k]!;
    const first = ids[(k + 1) % ids.length]!;
    switch (origin.reason) {
      case 'depends_on':
        return `${origin.path} (${waiter} depends on ${first})`;
      case 'dependency':
        return `${origin.path} (${waiter} waits for ${first})`;
      case 'requires':
        return `${origin.detail ?? 'a taskserv requirement'} at ${origin.path} (${waiter} waits for ${first})`;
    }
  });
  const rest = origins.length - parts.length;
  return parts.join('; ') + (rest > 0 ? `; and ${rest} more` : '');
}
