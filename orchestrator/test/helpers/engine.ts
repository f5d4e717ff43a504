/**
 * Engine test helpers: plans from workflow literals, a scripted executor that records what it ran
 * and lets a test decide each outcome, and a fresh store.
 *
 * @module
 */
import * as v from 'valibot';
import { expect, vi } from 'vitest';
import { WorkflowSchema, type WorkflowInput } from '../../../schemas/src/workflow.ts';
import { planWorkflow } from '../../src/plan/index.ts';
import type { Plan } from '../../src/plan/types.ts';
import type {
  DispatchHooks,
  Dispatcher,
  TaskAssignment,
  TaskReport,
} from '../../src/engine/dispatch.ts';
import { RunDriver } from '../../src/engine/run-driver.ts';
import { _ManualClock } from '../../src/engine/clock.ts';
import { createStore, type Store } from '../../src/store/index.ts';
import type { RunStatus, TaskFailure } from '../../src/engine/types.ts';

/** Parses and plans a workflow literal. */
export function planOf(input: WorkflowInput): {
  workflow: v.InferOutput<typeof WorkflowSchema>;
  plan: Plan;
} {
  const workflow = v.parse(WorkflowSchema, input);
  return { workflow, plan: planWorkflow(workflow) };
}

/** A cluster operation with one echo step per item: tasks `id:item` on the `orchestrator` queue. */
export function op(id: string, items: string[], extra: Record<string, unknown> = {}) {
  return {
    id,
    type: 'update' as const,
    target: 'cluster' as const,
    items,
    steps: [{ name: 'work', type: 'echo' as const, params: { message: id } }],
    ...extra,
  };
}

type Behaviour = (a: TaskAssignment, hooks: DispatchHooks) => Promise<TaskReport> | TaskReport;

const ok: TaskReport = {
  status: 'succeeded',
  result: { steps: [{ index: 0, name: 'work', status: 'succeeded' }] },
};

/** A failed report with one finished step before the failing one. */
export function failed(type = 'exit-code', extra: Partial<TaskFailure> = {}): TaskReport {
  return {
    status: 'failed',
    result: { steps: [{ index: 0, name: 'work', status: 'succeeded' }] },
    failure: { type, message: `${type} happened`, ...extra },
  };
}

/** An executor whose outcomes the test decides; it records every assignment in order. */
export class ScriptedExecutor implements Dispatcher {
  readonly log: string[] = [];
  private readonly behaviours = new Map<string, Behaviour[]>();
  /** Assignments held open by `hold`, to be finished by the test. */
  readonly held = new Map<string, { finish: (r: TaskReport) => void; hooks: DispatchHooks }>();

  /** Scripts the next outcomes of a task (by id), in order; afterwards it succeeds. */
  on(taskId: string, ...outcomes: Array<Behaviour | TaskReport>): this {
    this.behaviours.set(
      taskId,
      outcomes.map((o) => (typeof o === 'function' ? o : () => o)),
    );
    return this;
  }

  /** Makes the task's next attempt wait until the test finishes it (or its signal aborts). */
  hold(taskId: string): this {
    return this.on(
      taskId,
      (_a, hooks) =>
        new Promise<TaskReport>((resolve) => {
          this.held.set(taskId, { finish: resolve, hooks });
          hooks.signal.addEventListener('abort', () => resolve(failed('cancelled')), {
            once: true,
          });
        }),
    );
  }

  async dispatch(a: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport> {
    this.log.push(a.mode === 'execute' ? `${a.task.id}#${a.attempt}` : `undo ${a.task.id}`);
    if (a.mode === 'compensate') return ok;
    const queue = this.behaviours.get(a.task.id);
    const next = queue?.shift();
    if (next) {
      const report = await next(a, hooks);
      for (const s of report.result.steps) hooks.step(s);
      return report;
    }
    hooks.step(ok.result.steps[0]!);
    return ok;
  }

  /** Executions only, without attempt numbers. */
  get executed(): string[] {
    return this.log.filter((l) => !l.startsWith('undo ')).map((l) => l.split('#')[0]!);
  }

  get undone(): string[] {
    return this.log.filter((l) => l.startsWith('undo ')).map((l) => l.slice(5));
  }
}

/** A fresh in-memory store. */
export async function memoryStore(): Promise<Store> {
  return createStore({ pglite: { dataDir: 'memory://' } });
}

let counter = 0;

/** Creates a run for a workflow and a driver for it (not started). */
export async function newDriver(
  store: Store,
  input: WorkflowInput,
  executor: Dispatcher,
  options: { clock?: _ManualClock; concurrency?: number } = {},
): Promise<RunDriver> {
  const { workflow, plan } = planOf(input);
  const id = `run-${++counter}`;
  await store.createRun({ id, name: workflow.name, workflow, plan });
  return RunDriver.load(id, {
    store,
    dispatcher: executor,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
  });
}

/** Waits until the run ends and checks its status. */
export async function expectEnds(driver: RunDriver, status: RunStatus): Promise<void> {
  await expect(driver.done).resolves.toBe(status);
}

/** Waits until a condition holds (the engine commits asynchronously). */
export async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  await vi.waitFor(async () => expect(await condition()).toBe(true), {
    timeout: 5000,
    interval: 5,
  });
}

export { _ManualClock };
