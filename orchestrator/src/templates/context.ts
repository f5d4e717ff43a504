/**
 * What templates see. The engine hands each task a {@link TaskContext} (plain JSON: input values,
 * the environment, the `secrets` block and earlier operations' outputs, never a secret value);
 * the executor adds the server, the task's own step outputs and the secrets it reads at dispatch,
 * making the {@link TemplateContext} a step's params are rendered with.
 *
 * @module
 */
import type { Secrets, Step } from '../../../schemas/src/workflow.ts';
import type { SecretTree } from '../secrets/types.ts';

/** Outputs published by a step or an operation. */
export interface Outputs {
  readonly outputs: Readonly<Record<string, string>>;
}

/** What the engine gives a task for its templates. */
export interface TaskContext {
  /** The run's input values. */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** The environment the run was started in (`--env`), or `''`. */
  readonly environment: string;
  /** Where the run's secrets come from (paths and names, never values). */
  readonly secrets?: Secrets;
  /** Outputs of earlier operations, by operation id. */
  readonly operations: Readonly<Record<string, Outputs>>;
}

/** The variables a step's params are rendered with. */
export interface TemplateContext {
  readonly inputs: Readonly<Record<string, unknown>>;
  /** The environment's name, or `''`. */
  readonly env: string;
  readonly run: { readonly id: string };
  readonly task: {
    readonly id: string;
    readonly operation: string;
    readonly item: string;
    readonly attempt: number;
  };
  /** Absent for tasks that run on no server. */
  readonly server?: {
    readonly name: string;
    readonly address?: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  /** Outputs of this task's earlier steps, by step name. */
  readonly steps: Readonly<Record<string, Outputs>>;
  readonly operations: Readonly<Record<string, Outputs>>;
  readonly secrets: SecretTree;
}

/** The top-level names a template may use. */
export const TEMPLATE_ROOTS = [
  'inputs',
  'env',
  'run',
  'task',
  'server',
  'steps',
  'operations',
  'secrets',
] as const;

const usesOperations = new WeakMap<readonly Step[], boolean>();

/**
 * Whether any of these steps' params may read `operations.…` (a cheap text check the engine uses
 * to skip gathering earlier operations' outputs for tasks that cannot read them).
 */
export function readsOperationOutputs(steps: readonly Step[]): boolean {
  let known = usesOperations.get(steps);
  if (known === undefined) {
    known = steps.some((s) =>
      JSON.stringify([s.params, s.rollback?.params]).includes('operations'),
    );
    usesOperations.set(steps, known);
  }
  return known;
}
