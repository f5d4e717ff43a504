/**
 * The plan for people: one block per level listing its operations (type, target, tasks, what
 * they wait for), then totals.
 *
 * @module
 */
import { listOf } from './context.ts';
import type { Plan, PlannedOperation } from './types.ts';

/**
 * Renders a plan as a text table.
 *
 * @param plan The plan.
 * @returns Lines ending in a newline.
 */
export function renderTable(plan: Plan): string {
  const { operations, tasks, edges } = plan;
  const barriers = plan.barriers?.length ?? 0;
  const links = `${count(edges.length, 'edge')}${barriers > 0 ? `, ${count(barriers, 'barrier')}` : ''}`;
  const levels = operations.length === 0 ? 0 : operations[operations.length - 1]!.level + 1;
  const lines = [
    `Plan for ${JSON.stringify(plan.workflow)} (${plan.type}${plan.type === 'sequential' ? ', one task at a time' : ''}): ` +
      `${count(operations.length, 'operation')} in ${count(levels, 'level')}, ` +
      `${count(tasks.length, 'task')}, ${links}`,
  ];
  const width = {
    id: Math.max(0, ...operations.map((o) => o.id.length)),
    type: Math.max(0, ...operations.map((o) => o.type.length)),
    target: Math.max(0, ...operations.map((o) => o.target.length)),
    tasks: Math.max(0, ...operations.map((o) => count(o.tasks.length, 'task').length)),
  };
  let level = -1;
  for (const operation of operations) {
    if (operation.level !== level) {
      level = operation.level;
      lines.push('', `Level ${level}`);
    }
    lines.push(row(operation, width));
  }

  const queues = { provider: 0, server: 0, orchestrator: 0 };
  for (const task of tasks) {
    if (task.queue === 'orchestrator') queues.orchestrator++;
    else if (task.queue.startsWith('provider:')) queues.provider++;
    else queues.server++;
  }
  let hard = 0;
  for (const edge of edges) if (edge.type === 'hard') hard++;
  lines.push(
    '',
    `Totals: ${count(operations.length, 'operation')}, ${count(tasks.length, 'task')} ` +
      `(${queues.server} on servers, ${queues.provider} through providers, ${queues.orchestrator} on the orchestrator), ` +
      `${count(edges.length, 'edge')} (${hard} hard, ${edges.length - hard} soft)` +
      (barriers > 0
        ? `, ${count(barriers, 'barrier')} (every task of one operation waits for every task of another)`
        : ''),
  );
  return `${lines.join('\n')}\n`;
}

function row(
  operation: PlannedOperation,
  width: Record<'id' | 'type' | 'target' | 'tasks', number>,
) {
  const cells = [
    operation.id.padEnd(width.id),
    operation.type.padEnd(width.type),
    operation.target.padEnd(width.target),
    count(operation.tasks.length, 'task').padStart(width.tasks),
  ];
  const after = operation.depends_on.length > 0 ? `  after ${listOf(operation.depends_on, 4)}` : '';
  return `  ${cells.join('  ')}${after}`.trimEnd();
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
