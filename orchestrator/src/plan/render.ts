/**
 * Renders a plan for people (`table`), machines (`json`) or pictures (`dot`, `mermaid`).
 *
 * @module
 */
import { renderDotChunks, renderMermaidChunks } from './render-graph.ts';
import { renderJsonChunks } from './render-json.ts';
import { renderTable } from './render-table.ts';
import type { Plan } from './types.ts';

/** The formats `renderPlan` knows. */
export const PLAN_FORMATS = ['table', 'json', 'dot', 'mermaid'] as const;

/** A plan output format. */
export type PlanFormat = (typeof PLAN_FORMATS)[number];

/**
 * Renders a plan. Output is deterministic: the same plan gives the same text.
 *
 * @param plan The plan.
 * @param format `table` for a terminal, `json` for tools, `dot` for Graphviz, `mermaid` for Markdown.
 * @returns The text, ending in a newline.
 *
 * @example
 * ```ts
 * process.stdout.write(renderPlan(planWorkflow(workflow), 'mermaid'));
 * ```
 */
export function renderPlan(plan: Plan, format: PlanFormat): string {
  return Array.from(renderPlanChunks(plan, format)).join('');
}

/**
 * {@link renderPlan}'s text in pieces, for writing a large plan as it is made (see `writePieces`).
 *
 * @param plan The plan.
 * @param format As for {@link renderPlan}.
 * @returns The pieces, joining to what `renderPlan` returns.
 */
export function renderPlanChunks(plan: Plan, format: PlanFormat): Iterable<string> {
  switch (format) {
    case 'table':
      return [renderTable(plan)];
    case 'json':
      return renderJsonChunks(plan);
    case 'dot':
      return renderDotChunks(plan);
    case 'mermaid':
      return renderMermaidChunks(plan);
  }
}
