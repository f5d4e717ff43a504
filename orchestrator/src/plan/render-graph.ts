/**
 * The plan as a graph picture: Graphviz DOT and Mermaid flowcharts. Operations are clusters
 * (subgraphs) holding their tasks; hard edges are solid, soft edges dashed; a barrier is an edge
 * between two operations' subgraphs.
 *
 * @module
 */
import type { Plan, PlannedOperation, PlannedTask } from './types.ts';

/**
 * Renders a plan in Graphviz DOT (`dot -Tsvg`). Every id is quoted, so any name is valid.
 *
 * @param plan The plan.
 * @returns A `digraph` ending in a newline.
 */
export function renderDot(plan: Plan): string {
  const tasksById = new Map(plan.tasks.map((t) => [t.id, t]));
  const lines = [
    `digraph ${dotString(plan.workflow)} {`,
    '  rankdir=TB;',
    ...(plan.barriers?.length ? ['  compound=true;'] : []),
    '  node [shape=box, style=rounded];',
  ];
  for (const operation of plan.operations) {
    lines.push(
      `  subgraph ${dotString(`cluster_${operation.id}`)} {`,
      `    label=${dotString(operationLabel(operation))};`,
    );
    for (const id of operation.tasks) {
      lines.push(`    ${dotString(id)} [label=${dotString(taskLabel(tasksById.get(id)!))}];`);
    }
    lines.push('  }');
  }
  for (const edge of plan.edges) {
    const style = edge.type === 'soft' ? ' [style=dashed]' : '';
    lines.push(`  ${dotString(edge.from)} -> ${dotString(edge.to)}${style};`);
  }
  // A barrier is drawn from cluster to cluster: an edge between a task of each, clipped at the
  // clusters' borders (`compound=true`).
  const firstTask = new Map(plan.operations.map((o) => [o.id, o.tasks[0]]));
  for (const barrier of plan.barriers ?? []) {
    const from = firstTask.get(barrier.from);
    const to = firstTask.get(barrier.to);
    if (from === undefined || to === undefined) continue;
    const style = barrier.type === 'soft' ? ', style=dashed' : '';
    lines.push(
      `  ${dotString(from)} -> ${dotString(to)} [ltail=${dotString(`cluster_${barrier.from}`)}, lhead=${dotString(`cluster_${barrier.to}`)}${style}];`,
    );
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/**
 * Renders a plan as a Mermaid `flowchart TD`, with ids reduced to letters, digits and `_`.
 *
 * @param plan The plan.
 * @returns The flowchart ending in a newline.
 */
export function renderMermaid(plan: Plan): string {
  const names = new MermaidIds();
  const tasksById = new Map(plan.tasks.map((t) => [t.id, t]));
  const lines = ['flowchart TD'];
  for (const operation of plan.operations) {
    lines.push(
      `  subgraph ${names.get('op', operation.id)}["${mermaidText(operationLabel(operation))}"]`,
    );
    for (const id of operation.tasks) {
      lines.push(`    ${names.get('t', id)}["${mermaidText(taskLabel(tasksById.get(id)!))}"]`);
    }
    lines.push('  end');
  }
  for (const edge of plan.edges) {
    const arrow = edge.type === 'soft' ? '-.->' : '-->';
    lines.push(`  ${names.get('t', edge.from)} ${arrow} ${names.get('t', edge.to)}`);
  }
  for (const barrier of plan.barriers ?? []) {
    const arrow = barrier.type === 'soft' ? '-.->' : '-->';
    lines.push(`  ${names.get('op', barrier.from)} ${arrow} ${names.get('op', barrier.to)}`);
  }
  return `${lines.join('\n')}\n`;
}

function operationLabel(o: PlannedOperation): string {
  return `${o.id} (${o.type} ${o.target}, level ${o.level})`;
}

function taskLabel(t: PlannedTask): string {
  return t.server === undefined || t.server === t.item ? t.item : `${t.item}@${t.server}`;
}

/** A DOT quoted string: backslashes, quotes and newlines escaped. */
function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** Text inside a Mermaid `["…"]` label, where quotes and angle brackets must be entities. */
function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

/**
 * Mermaid ids: a prefix (so no id is a keyword such as `end`) plus the name with every other
 * character turned into `_`, numbered when two names reduce to the same id.
 */
class MermaidIds {
  private readonly byName = new Map<string, string>();
  private readonly used = new Set<string>();

  get(prefix: string, name: string): string {
    const key = `${prefix}:${name}`;
    const known = this.byName.get(key);
    if (known !== undefined) return known;
    const base = `${prefix}_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    let id = base;
    for (let n = 2; this.used.has(id); n++) id = `${base}_${n}`;
    this.used.add(id);
    this.byName.set(key, id);
    return id;
  }
}
