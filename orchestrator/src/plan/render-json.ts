/**
 * The plan as JSON for machines, with a stable key order so output can be diffed and cached.
 *
 * @module
 */
import type { Plan, PlanBarrier, PlanEdge, PlannedOperation, PlannedTask } from './types.ts';

/**
 * Renders a plan as indented JSON: `{ workflow, type, operations, tasks, edges, barriers }`.
 *
 * @param plan The plan.
 * @returns The JSON text ending in a newline.
 */
export function renderJson(plan: Plan): string {
  const document = {
    workflow: plan.workflow,
    type: plan.type,
    operations: plan.operations.map(operationJson),
    tasks: plan.tasks.map(taskJson),
    edges: Array.from(plan.edges, edgeJson),
    barriers: (plan.barriers ?? []).map(barrierJson),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

function operationJson(o: PlannedOperation) {
  const { retry_policy: retry, rollout } = o;
  return {
    id: o.id,
    level: o.level,
    type: o.type,
    target: o.target,
    depends_on: o.depends_on,
    tasks: o.tasks,
    parallel: o.parallel,
    timeout: o.timeout,
    on_failure: o.on_failure,
    retry_policy: {
      max_attempts: retry.max_attempts,
      backoff: retry.backoff,
      initial_delay: retry.initial_delay,
      max_delay: retry.max_delay,
      non_retryable: retry.non_retryable,
    },
    rollout: {
      strategy: rollout.strategy,
      batch_size: rollout.batch_size,
      batch_delay: rollout.batch_delay,
      max_failures: rollout.max_failures,
      canary_percentage: rollout.canary_percentage,
      canary_promotion: rollout.canary_promotion,
    },
  };
}

// Optional keys are left out rather than written as null, as in the workflow files themselves.
function taskJson(t: PlannedTask) {
  return {
    id: t.id,
    operation: t.operation,
    item: t.item,
    ...(t.server === undefined ? {} : { server: t.server }),
    queue: t.queue,
    ...(t.action === undefined ? {} : { action: t.action }),
    ...(t.provider === undefined ? {} : { provider: t.provider }),
    steps: t.steps,
    compensation: t.compensation,
    ...(t.health_check === undefined ? {} : { health_check: t.health_check }),
  };
}

function edgeJson(e: PlanEdge) {
  return { from: e.from, to: e.to, type: e.type, reason: e.reason };
}

function barrierJson(b: PlanBarrier) {
  return { from: b.from, to: b.to, type: b.type, reason: b.reason };
}
