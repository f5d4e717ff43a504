/**
 * Renders a plan for people (`table`), machines (`json`) or pictures (`dot`, `mermaid`).
 *
 * @module
 */
import { renderDot, renderMermaid } from './render-graph.ts';
import { renderJson } from './render-json.ts';
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
  switch (format) {
    case 'table':
      return renderTable(plan);
    case 'json':
      return renderJson(plan);
    case 'dot':
      return renderDot(plan);
    case 'mermaid':
      return renderMermaid(plan);
  }
}
