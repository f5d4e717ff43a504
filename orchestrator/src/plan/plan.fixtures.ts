/**
 * Test fixtures for the planner: a small taskserv catalog, an inventory, and helpers that plan a
 * workflow as written (through the valibot schema, as the loader would) or collect its problems.
 *
 * @internal
 * @module
 */
import * as v from 'valibot';
import { InvalidWorkflowError, type Problem } from '../../../schemas/src/problems.ts';
import {
  TaskservSchema,
  WorkflowSchema,
  type Taskserv,
  type WorkflowInput,
} from '../../../schemas/src/workflow.ts';
import { planWorkflow, type Plan } from './index.ts';

const step = (name: string) => ({ name, type: 'echo' as const, params: { message: name } });

/** Taskservs: containerd ← kubernetes ← helm, docker ⟂ podman, postgres without a health check. */
export const CATALOG: ReadonlyMap<string, Taskserv> = new Map(
  [
    {
      name: 'containerd',
      install: [step('install-containerd')],
      uninstall: [step('remove-containerd')],
      health_check: { command: 'ctr', args: ['version'] },
    },
    {
      name: 'kubernetes',
      requires: ['containerd'],
      install: [step('install-kubelet'), step('kubeadm-join')],
      uninstall: [step('kubeadm-reset')],
      health_check: { command: 'kubectl', args: ['get', 'nodes'] },
    },
    {
      name: 'helm',
      requires: ['kubernetes'],
      install: [step('install-helm')],
      uninstall: [step('remove-helm')],
      health_check: { command: 'helm', args: ['version'] },
    },
    { name: 'docker', conflicts_with: ['podman'], install: [step('install-docker')] },
    { name: 'podman', install: [step('install-podman')] },
    { name: 'postgres', install: [step('install-postgres')] },
  ].map((t) => {
    const taskserv = v.parse(TaskservSchema, t);
    return [taskserv.name, taskserv] as const;
  }),
);

/** web-1 (local) and web-2 (ssh) run kubernetes; db-1 (aws) runs postgres. */
export const SERVERS: NonNullable<WorkflowInput['servers']> = [
  { name: 'web-1', provider: 'local', taskservs: ['containerd', 'kubernetes', 'helm'] },
  { name: 'web-2', provider: 'ssh', taskservs: ['containerd', 'kubernetes'] },
  { name: 'db-1', provider: 'aws', taskservs: ['postgres'] },
];

/** An echo step, as written in a workflow. */
export function echo(name: string) {
  return step(name);
}

/** An `update` of cluster `c` with one echo step, waiting for `depends_on`. */
export function clusterOp(id: string, depends_on: string[] = []) {
  return {
    id,
    type: 'update' as const,
    target: 'cluster' as const,
    items: ['c'],
    steps: [echo(id)],
    depends_on,
  };
}

/** `length` cluster operations of one task per item, each waiting for the one before. */
export function chainOfOperations(length: number, items = ['c']): WorkflowInput['operations'] {
  return Array.from({ length }, (_, i) => ({
    ...clusterOp(`op-${i}`, i > 0 ? [`op-${i - 1}`] : []),
    items,
  }));
}

/** A workflow named `test` on {@link SERVERS} with the given operations and extras. */
export function workflow(
  operations: WorkflowInput['operations'],
  extra: Partial<WorkflowInput> = {},
): WorkflowInput {
  return { name: 'test', servers: SERVERS, operations, ...extra };
}

/** Validates a workflow as the loader does, then plans it against {@link CATALOG}. */
export function plan(input: WorkflowInput, catalog: ReadonlyMap<string, Taskserv> = CATALOG): Plan {
  return planWorkflow(v.parse(WorkflowSchema, input), { catalog });
}

/** The problems planning reports; fails when the workflow plans. */
export function problemsOf(
  input: WorkflowInput,
  catalog: ReadonlyMap<string, Taskserv> = CATALOG,
): readonly Problem[] {
  try {
    plan(input, catalog);
  } catch (e: unknown) {
    if (e instanceof InvalidWorkflowError) return e.problems;
    throw e;
  }
  throw new Error('expected the workflow not to plan');
}

/** `from -> to (type, reason)` lines of a plan's edges, sorted, for compact assertions. */
export function edgeLines(p: Plan): string[] {
  return Array.from(p.edges, (e) => `${e.from} -> ${e.to} (${e.type}, ${e.reason})`).sort();
}
