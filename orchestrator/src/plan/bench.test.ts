import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import {
  allocateResult,
  dependencyIndexOf,
  edgesOf,
  generateWorkflow,
} from '../../../bench/plan.ts';
import { WorkflowSchema } from '../../../schemas/src/workflow.ts';
import { planWorkflow } from './index.ts';

describe('bench/plan generator', () => {
  test('generates a valid, acyclic, reproducible workflow that plans', () => {
    const input = generateWorkflow(1000);
    expect(generateWorkflow(1000)).toEqual(input);
    expect(generateWorkflow(1000, 7)).not.toEqual(input);

    const plan = planWorkflow(v.parse(WorkflowSchema, input));
    expect(plan.operations).toHaveLength(1000);
    expect(plan.tasks).toHaveLength(1000);
    const edges = edgesOf(input);
    expect(plan.edges).toHaveLength(edges.length);
    expect(edges.length).toBeGreaterThan(1900);
    // Dependencies always point back, so levels follow file positions.
    const level = new Map(plan.operations.map((o) => [o.id, o.level]));
    for (const [from, to] of edges) expect(level.get(to)!).toBeGreaterThan(level.get(from)!);
  });

  test('its allocation floor builds as many objects as validation and planning return', () => {
    const input = generateWorkflow(1000);
    const workflow = v.parse(WorkflowSchema, input);
    const plan = planWorkflow(workflow);
    const [operations, tasks, planned, edges] = allocateResult(input, dependencyIndexOf(input)) as [
      unknown[],
      Array<{ id: string }>,
      unknown[],
      [Int32Array, Int32Array, Uint8Array],
    ];
    expect(operations).toEqual(workflow.operations);
    expect(planned).toHaveLength(plan.operations.length);
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
    expect([...tasks].sort(byId)).toEqual([...plan.tasks].sort(byId));
    // The floor's edge columns index its tasks, which are in file order.
    const [from, to] = edges;
    const floorEdges = Array.from(from, (f, e) => `${tasks[f]!.id} -> ${tasks[to[e]!]!.id}`);
    const planEdges = Array.from(plan.edges, (e) => `${e.from} -> ${e.to}`);
    expect(floorEdges.sort()).toEqual(planEdges.sort());
  });
});
