import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { edgesOf, generateWorkflow } from '../../../bench/plan.ts';
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
});
