/**
 * The plan as JSON for machines, with a stable key order so output can be diffed and cached.
 *
 * @module
 */
import type { Plan, PlanBarrier, PlanEdge, PlannedOperation, PlannedTask } from './types.ts';

/**
 * A plan as indented JSON, `{ workflow, type, operations, tasks, edges, barriers }` and a newline,
 * in pieces of {@link BATCH} list elements, for writing a large plan as it is made: at 100k
 * operations the whole text is 132 MB, and building it as one string cost more than planning.
 *
 * Each piece is one `JSON.stringify` of `{ [list]: elements }` with the wrapper's first and last
 * lines cut off: the elements come out at the depth they have in the document, so the pieces join
 * to exactly what `JSON.stringify(planDocument(plan), null, 2)` writes. A `JSON.stringify` per
 * element, indented again by a regular expression, made 100k-operation plans a third slower to
 * write (1.7-2.6 s against 1.3-1.5 s): many small strings, each copied again to be joined.
 * `muster plan -o json` of 100k operations: 3.6-3.7 s before, 3.2-3.5 s after, in turn.
 *
 * @param plan The plan.
 * @returns The pieces, in order.
 */
export function* renderJsonChunks(plan: Plan): Generator<string> {
  yield `{\n  "workflow": ${JSON.stringify(plan.workflow)},\n  "type": ${JSON.stringify(plan.type)},\n`;
  yield* listChunks('operations', plan.operations, operationJson);
  yield* listChunks('tasks', plan.tasks, taskJson);
  yield* listChunks('edges', plan.edges, edgeJson);
  yield* listChunks('barriers', plan.barriers ?? [], barrierJson, true);
  yield '}\n';
}

/** List elements written in one piece: a few hundred kilobytes of text. */
const BATCH = 1024;

/** `"key": [ ... ]` at the document's first level, {@link BATCH} elements to a piece. */
function* listChunks<T>(
  key: string,
  items: Iterable<T>,
  toJson: (item: T) => unknown,
  last = false,
): Generator<string> {
  const name = JSON.stringify(key);
  // `JSON.stringify({ key: [e1, e2] }, null, 2)` is `{\n  "key": [\n    e1,\n    e2\n  ]\n}`:
  // the elements are between these two.
  const head = `{\n  ${name}: [\n`;
  const tail = '\n  ]\n}';
  let batch: unknown[] = [];
  let first = true;
  const pieces = function* () {
    const text = JSON.stringify({ [key]: batch }, null, 2);
    yield first ? `  ${name}: [\n` : ',\n';
    // A slice of one string, written as it is: joined to the line before, it would be copied.
    yield text.slice(head.length, text.length - tail.length);
    first = false;
    batch = [];
  };
  for (const item of items) {
    batch.push(toJson(item));
    if (batch.length === BATCH) yield* pieces();
  }
  if (batch.length > 0) yield* pieces();
  const close = last ? '\n' : ',\n';
  yield first ? `  ${name}: []${close}` : `\n  ]${close}`;
}

/**
 * The plan as the document {@link renderJsonChunks} writes, in its key order:
 * `JSON.stringify(planDocument(plan), null, 2)` is the text, without the last newline.
 *
 * @param plan The plan.
 * @returns The document.
 */
export function planDocument(plan: Plan): object {
  return {
    workflow: plan.workflow,
    type: plan.type,
    operations: plan.operations.map(operationJson),
    tasks: plan.tasks.map(taskJson),
    edges: Array.from(plan.edges, edgeJson),
    barriers: (plan.barriers ?? []).map(barrierJson),
  };
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
