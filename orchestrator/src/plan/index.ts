/**
 * The planner: turns a validated workflow into a {@link Plan} (tasks, edges, levels) that the
 * engine runs, and renders plans as a table, JSON, Graphviz DOT or Mermaid.
 *
 * @module
 */
export { planWorkflow, type PlanOptions } from './plan-workflow.ts';
export { PLAN_FORMATS, renderPlan, type PlanFormat } from './render.ts';
export * from './types.ts';
