/**
 * The plan as a graph picture: Graphviz DOT and Mermaid flowcharts. Operations are clusters
 * (subgraphs) holding their tasks; hard edges are solid, soft edges dashed; a barrier is an edge
 * between two operations' subgraphs.
 *
 * @module
 */
import { joinPieces } from '../pieces.ts';
import type { Plan, PlannedOperation, PlannedTask } from './types.ts';

/**
 * A plan in Graphviz DOT (`dot -Tsvg`), in pieces of whole lines: at 100k operations the picture is
 * 20 MB, and holding its 500k lines until the end cost more than making them. Every id is quoted,
 * so any name is valid.
 *
 * @param plan The plan.
 * @returns The text of a `digraph`, in pieces.
 */
export function renderDotChunks(plan: Plan): Generator<string> {
  return joinPieces(dotLines(plan), PIECE_SIZE);
}

function* dotLines(plan: Plan): Generator<string> {
  const tasksById = new Map(plan.tasks.map((t) => [t.id, t]));
  yield `digraph ${dotString(plan.workflow)} {\n`;
  yield '  rankdir=TB;\n';
  if (plan.barriers?.length) yield '  compound=true;\n';
  yield '  node [shape=box, style=rounded];\n';
  for (const operation of plan.operations) {
    yield `  subgraph ${dotString(`cluster_${operation.id}`)} {\n`;
    yield `    label=${dotString(operationLabel(operation))};\n`;
    for (const id of operation.tasks) {
      yield `    ${dotString(id)} [label=${dotString(taskLabel(tasksById.get(id)!))}];\n`;
    }
    yield '  }\n';
  }
  for (const edge of plan.edges) {
    const style = edge.type === 'soft' ? ' [style=dashed]' : '';
    yield `  ${dotString(edge.from)} -> ${dotString(edge.to)}${style};\n`;
  }
  // A barrier is drawn from cluster to cluster: an edge between a task of each, clipped at the
  // clusters' borders (`compound=true`).
  const firstTask = new Map(plan.operations.map((o) => [o.id, o.tasks[0]]));
  for (const barrier of plan.barriers ?? []) {
    const from = firstTask.get(barrier.from);
    const to = firstTask.get(barrier.to);
    if (from === undefined || to === undefined) continue;
    const style = barrier.type === 'soft' ? ', style=dashed' : '';
    yield `  ${dotString(from)} -> ${dotString(to)} [ltail=${dotString(`cluster_${barrier.from}`)}, lhead=${dotString(`cluster_${barrier.to}`)}${style}];\n`;
  }
  yield '}\n';
}

/**
 * A plan as a Mermaid `flowchart TD`, in pieces of whole lines (see {@link renderDotChunks}), with
 * ids reduced to letters, digits and `_`.
 *
 * @param plan The plan.
 * @returns The text of the flowchart, in pieces.
 */
export function renderMermaidChunks(plan: Plan): Generator<string> {
  return joinPieces(mermaidLines(plan), PIECE_SIZE);
}

function* mermaidLines(plan: Plan): Generator<string> {
  const names = new MermaidIds();
  const tasksById = new Map(plan.tasks.map((t) => [t.id, t]));
  yield 'flowchart TD\n';
  for (const operation of plan.operations) {
    yield `  subgraph ${names.get('op', operation.id)}["${mermaidText(operationLabel(operation))}"]\n`;
    for (const id of operation.tasks) {
      yield `    ${names.get('t', id)}["${mermaidText(taskLabel(tasksById.get(id)!))}"]\n`;
    }
    yield '  end\n';
  }
  for (const edge of plan.edges) {
    const arrow = edge.type === 'soft' ? '-.->' : '-->';
    yield `  ${names.get('t', edge.from)} ${arrow} ${names.get('t', edge.to)}\n`;
  }
  for (const barrier of plan.barriers ?? []) {
    const arrow = barrier.type === 'soft' ? '-.->' : '-->';
    yield `  ${names.get('op', barrier.from)} ${arrow} ${names.get('op', barrier.to)}\n`;
  }
}

/**
 * Characters in a piece: about a thousand lines, few enough to be short-lived. Holding a megabyte
 * of single lines before joining them (what `writePieces` does with small pieces) made `-o dot` at
 * 100k operations 2.7 s and 330 MB against 2.2 s and 260 MB.
 */
const PIECE_SIZE = 1 << 16;

function operationLabel(o: PlannedOperation): string {
  return `${o.id} (${o.type} ${o.target}, level ${o.level})`;
}

function taskLabel(t: PlannedTask): string {
  return t.server === undefined || t.server === t.item ? t.item : `${t.item}@${t.server}`;
}

/** A DOT quoted string: backslashes, quotes and newlines escaped. */
function dotString(text: string): string {
  if (!DOT_ESCAPED.test(text)) return `"${text}"`;
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

const DOT_ESCAPED = /[\\"\n]/;

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
