/**
 * How a plan is kept in `runs.plan`: each step written once.
 *
 * The tasks of a fleet share their steps (a taskserv's install steps, an operation's steps), but
 * JSON writes a shared object once per reference: a plan of 10k servers with four taskservs each
 * was 100 MB of JSON, and storing it took 25 s and 2.4 GB on PGlite (16 s on PostgreSQL). Stored,
 * a task's `steps` and `compensation` are positions in the plan's `shared_steps`; read back, they
 * are the steps again, shared as they were. Plans stored before have no `shared_steps` and are
 * read as they are.
 *
 * @module
 */
import type { Step } from '../../../schemas/src/workflow.ts';
import type { Plan, PlannedTask } from '../plan/types.ts';

/** A task as stored: its steps by position in {@link StoredPlan.shared_steps}. */
type StoredTask = Omit<PlannedTask, 'steps' | 'compensation'> & {
  readonly steps: readonly number[];
  readonly compensation: readonly number[];
};

/** A plan as stored in `runs.plan`. */
export type StoredPlan = Omit<Plan, 'tasks'> & {
  readonly tasks: readonly StoredTask[];
  readonly shared_steps: readonly Step[];
};

/**
 * The plan as stored: every step object once, tasks naming theirs by position.
 *
 * @param plan The plan.
 * @returns What to write to `runs.plan`.
 */
export function encodePlan(plan: Plan): StoredPlan {
  const shared: Step[] = [];
  const positions = new Map<Step, number>();
  const positionsOf = (steps: readonly Step[]): number[] =>
    steps.map((step) => {
      let at = positions.get(step);
      if (at === undefined) {
        at = shared.length;
        shared.push(step);
        positions.set(step, at);
      }
      return at;
    });
  const tasks = plan.tasks.map((task): StoredTask => ({
    ...task,
    steps: positionsOf(task.steps),
    compensation: positionsOf(task.compensation),
  }));
  return { ...plan, tasks, shared_steps: shared };
}

/**
 * The plan stored by {@link encodePlan}, or by a version before it.
 *
 * @param stored What `runs.plan` holds.
 * @returns The plan, tasks sharing their steps as when it was stored.
 */
export function decodePlan(stored: unknown): Plan {
  const plan = stored as Partial<StoredPlan> & Plan;
  if (!Array.isArray(plan.shared_steps)) return plan;
  const { shared_steps: shared, ...rest } = plan;
  const stepsAt = (positions: readonly number[]): Step[] => positions.map((at) => shared[at]!);
  const tasks = (rest.tasks as readonly StoredTask[]).map((task): PlannedTask => ({
    ...task,
    steps: stepsAt(task.steps),
    compensation: stepsAt(task.compensation),
  }));
  return { ...rest, tasks };
}
